//! Complete, valid example models for every writer: used by the round-trip tests, the
//! `write_samples` example (pyx12 validation) and as a starting point for callers.
//!
//! All names and ids are made up; NPIs carry valid check digits.

use std::str::FromStr;

use chrono::{NaiveDate, NaiveTime};
use rust_decimal::Decimal;

use crate::model::ack::{
    ElementError, ElementPosition, FunctionalAck, InterchangeAck, SegmentError, SetAck,
};
use crate::model::claim::{
    Accident, Adjustment, AmbulanceLocation, AmbulanceTransport, Attachment, BillingProvider,
    ClaimCommon, ClaimFrequency, ClaimProvider, ClaimSetHeader, Drug, IcdProcedure,
    InstitutionalClaim, InstitutionalClaimSet, InstitutionalLine, LineAdjudication, LineProvider,
    LineProviderRole, Note, Occurrence, OccurrenceSpan, OtherPayer, Patient, Payer, Procedure,
    ProfessionalClaim, ProfessionalClaimSet, ProfessionalLine, Receiver, RelatedCause,
    ServiceFacility, Submitter, Subscriber, TaxId,
};
use crate::model::claim_status::{
    AcknowledgedClaim, AcknowledgedProvider, AnsweredClaim, ClaimAcknowledgment, ClaimStatusAnswer,
    ClaimStatusInquiry, LineStatus, StatusClaimQuery, StatusCode, StatusDependent, StatusInfo,
};
use crate::model::eligibility::{Dependent, EligibilityInquiry, Trace};
use crate::model::review::ServicesReview;
use crate::model::{Address, DateRange, PartyName, PersonName, TransactionHeader};

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap_or_default()
}

fn addr(line1: &str, city: &str, state: &str, zip: &str) -> Address {
    Address {
        line1: line1.into(),
        line2: None,
        city: city.into(),
        state: state.into(),
        postal_code: zip.into(),
    }
}

fn header(reference: &str) -> TransactionHeader {
    TransactionHeader {
        reference: reference.into(),
        created_date: date(2026, 3, 2),
        created_time: NaiveTime::from_hms_opt(9, 30, 0).unwrap_or_default(),
    }
}

fn claim_set_header() -> ClaimSetHeader {
    ClaimSetHeader {
        transaction: header("BATCH0001"),
        submitter: Submitter {
            name: PartyName::organization("MEDBILL CLINIC BILLING"),
            id: "MB123456".into(),
            contact_name: "BILLING DESK".into(),
            phone: "5555550100".into(),
        },
        receiver: Receiver {
            name: "EXAMPLE CLEARINGHOUSE".into(),
            id: "CH0001".into(),
        },
    }
}

/// Returns the billing provider used by the examples (an organisation).
pub fn billing_provider() -> BillingProvider {
    BillingProvider {
        name: PartyName::organization("SUNRISE FAMILY MEDICINE"),
        npi: "1234567893".into(),
        tax_id: TaxId::Ein("123456789".into()),
        address: addr("100 MAIN ST", "SPRINGFIELD", "IL", "627010001"),
        taxonomy: Some("207Q00000X".into()),
    }
}

fn payer() -> Payer {
    Payer {
        name: "ACME HEALTH PLAN".into(),
        id: "ACME01".into(),
        address: Some(addr("PO BOX 1000", "CHICAGO", "IL", "60601")),
    }
}

fn self_subscriber() -> Subscriber {
    Subscriber {
        payer_responsibility: "P".into(),
        group_number: Some("GRP7788".into()),
        group_name: None,
        claim_filing_indicator: "CI".into(),
        name: PersonName {
            last: "DOE".into(),
            first: Some("JANE".into()),
            middle: Some("Q".into()),
            suffix: None,
        },
        member_id: "XJ123456789".into(),
        address: Some(addr("12 ELM ST", "SPRINGFIELD", "IL", "62702")),
        birth_date: Some(date(1980, 4, 15)),
        gender: Some("F".into()),
    }
}

fn child_patient() -> Patient {
    Patient {
        relationship: "19".into(),
        name: PersonName::new("DOE", "TIMMY"),
        address: addr("12 ELM ST", "SPRINGFIELD", "IL", "62702"),
        birth_date: date(2015, 8, 1),
        gender: "M".into(),
    }
}

fn common(pcn: &str, total: &str, diagnoses: &[&str]) -> ClaimCommon {
    ClaimCommon {
        patient_control_number: pcn.into(),
        total_charge: dec(total),
        frequency: ClaimFrequency::Original,
        payer_claim_number: None,
        assignment: "A".into(),
        benefits_assigned: "Y".into(),
        release_of_information: "Y".into(),
        prior_authorization: None,
        medical_record_number: None,
        diagnoses: diagnoses.iter().map(|d| (*d).to_owned()).collect(),
        other_payers: Vec::new(),
    }
}

fn pline(
    code: &str,
    mods: &[&str],
    charge: &str,
    units: &str,
    pointers: &[u8],
    day: NaiveDate,
    ctl: &str,
) -> ProfessionalLine {
    ProfessionalLine {
        procedure: Procedure {
            qualifier: "HC".into(),
            code: code.into(),
            modifiers: mods.iter().map(|m| (*m).to_owned()).collect(),
        },
        charge: dec(charge),
        unit_basis: "UN".into(),
        units: dec(units),
        place_of_service: None,
        diagnosis_pointers: pointers.to_vec(),
        service_date: DateRange::day(day),
        line_control_number: Some(ctl.into()),
        prior_authorization: None,
        drug: None,
        attachments: Vec::new(),
        note: None,
        providers: Vec::new(),
        adjudications: Vec::new(),
    }
}

/// A line provider without address or taxonomy.
fn line_provider(role: LineProviderRole, name: PartyName, npi: &str) -> LineProvider {
    LineProvider {
        role,
        name,
        npi: Some(npi.into()),
        taxonomy: None,
        address: None,
    }
}

/// Returns an 837P set with four claims: an original claim for a self-subscriber (claim and line
/// notes and attachments, every 2420 line provider), a replacement (frequency 7 with REF*F8) for
/// a child patient, a secondary (COB) claim with 2320/2330 and 2430 adjudication from the primary
/// payer, and an ambulance claim after an auto accident (CLM11, DTP*439, CR1, 2310E/F).
pub fn professional_set() -> ProfessionalClaimSet {
    let dos = date(2026, 2, 20);
    let original = ProfessionalClaim {
        billing_provider: billing_provider(),
        subscriber: self_subscriber(),
        patient: None,
        payer: payer(),
        claim: common("PCN-2026-0001", "197.50", &["E119", "I10"]),
        place_of_service: "11".into(),
        provider_signature: true,
        patient_paid: Some(dec("20.00")),
        referring_provider: Some(ClaimProvider {
            name: PartyName::Person(PersonName::new("REFERRER", "RITA")),
            npi: "1666666668".into(),
            taxonomy: None,
        }),
        service_facility: Some(ServiceFacility {
            name: "SUNRISE WALK-IN CENTER".into(),
            npi: Some("1581234568".into()),
            address: addr("200 OAK AVE", "SPRINGFIELD", "IL", "627040002"),
        }),
        rendering_provider: Some(ClaimProvider {
            name: PartyName::Person(PersonName::new("SMITH", "ALAN")),
            npi: "1912301953".into(),
            taxonomy: Some("207Q00000X".into()),
        }),
        accident: None,
        attachments: vec![
            Attachment {
                report_type: "09".into(),
                transmission: "FX".into(),
                control_number: Some("PWK-0001-A".into()),
            },
            Attachment {
                report_type: "OZ".into(),
                transmission: "AA".into(),
                control_number: None,
            },
        ],
        note: Some(Note {
            code: "ADD".into(),
            text: "WALK-IN VISIT AFTER HOURS".into(),
        }),
        ambulance_transport: None,
        ambulance_pickup: None,
        ambulance_dropoff: None,
        lines: vec![
            ProfessionalLine {
                note: Some(Note {
                    code: "DCP".into(),
                    text: "RECHECK A1C IN 3 MONTHS".into(),
                }),
                providers: vec![
                    LineProvider {
                        taxonomy: Some("363LF0000X".into()),
                        ..line_provider(
                            LineProviderRole::Rendering,
                            PartyName::Person(PersonName::new("NURSE", "NORA")),
                            "1333444556",
                        )
                    },
                    line_provider(
                        LineProviderRole::Supervising,
                        PartyName::Person(PersonName::new("SMITH", "ALAN")),
                        "1912301953",
                    ),
                    line_provider(
                        LineProviderRole::Referring,
                        PartyName::Person(PersonName::new("REFERRER", "RITA")),
                        "1666666668",
                    ),
                ],
                ..pline("99214", &["25"], "150.00", "1", &[1, 2], dos, "L1-0001")
            },
            ProfessionalLine {
                providers: vec![
                    line_provider(
                        LineProviderRole::PurchasedService,
                        PartyName::organization(""),
                        "1444555662",
                    ),
                    LineProvider {
                        address: Some(addr("9 LAB WAY", "SPRINGFIELD", "IL", "627030009")),
                        ..line_provider(
                            LineProviderRole::ServiceFacility,
                            PartyName::organization("PRAIRIE REFERENCE LAB"),
                            "1555666779",
                        )
                    },
                    LineProvider {
                        address: Some(addr("300 PINE ST", "SPRINGFIELD", "IL", "62704")),
                        ..line_provider(
                            LineProviderRole::Ordering,
                            PartyName::Person(PersonName::new("ORDERLY", "OTTO")),
                            "1666777887",
                        )
                    },
                ],
                prior_authorization: Some("AUTHL2".into()),
                ..pline("83036", &[], "35.50", "1", &[1], dos, "L2-0001")
            },
            ProfessionalLine {
                drug: Some(Drug {
                    ndc: "00641036725".into(),
                    quantity: dec("1"),
                    unit: "ML".into(),
                }),
                attachments: vec![Attachment {
                    report_type: "RX".into(),
                    transmission: "EL".into(),
                    control_number: Some("PWK-0001-L3".into()),
                }],
                ..pline("J1100", &[], "12.00", "10", &[1], dos, "L3-0001")
            },
        ],
    };
    let mut replacement = ProfessionalClaim {
        subscriber: Subscriber {
            address: None,
            birth_date: None,
            gender: None,
            ..self_subscriber()
        },
        patient: Some(child_patient()),
        claim: ClaimCommon {
            frequency: ClaimFrequency::Replacement,
            payer_claim_number: Some("PAYERCLM998877".into()),
            prior_authorization: Some("AUTH5544".into()),
            ..common("PCN-2026-0002", "95", &["J069"])
        },
        rendering_provider: None,
        patient_paid: None,
        referring_provider: None,
        service_facility: None,
        attachments: Vec::new(),
        note: None,
        lines: vec![pline(
            "99213",
            &[],
            "95.00",
            "1",
            &[1],
            date(2026, 2, 21),
            "L1-0002",
        )],
        ..original.clone()
    };
    replacement.claim.medical_record_number = Some("MRN000321".into());
    let mut secondary = original.clone();
    secondary.subscriber.payer_responsibility = "S".into();
    secondary.claim = ClaimCommon {
        other_payers: vec![OtherPayer {
            payer_responsibility: "P".into(),
            relationship: "18".into(),
            group_number: Some("PRIMGRP1".into()),
            claim_filing_indicator: "MB".into(),
            adjustments: vec![
                Adjustment {
                    group: "CO".into(),
                    reason: "45".into(),
                    amount: dec("40.00"),
                    quantity: None,
                },
                Adjustment {
                    group: "PR".into(),
                    reason: "2".into(),
                    amount: dec("19.10"),
                    quantity: None,
                },
            ],
            paid_amount: Some(dec("76.40")),
            remaining_patient_liability: Some(dec("19.10")),
            benefits_assigned: "Y".into(),
            release_of_information: "Y".into(),
            subscriber_name: PersonName::new("DOE", "JANE"),
            subscriber_id: "1EG4TE5MK73".into(),
            payer_name: "MEDICARE PART B".into(),
            payer_id: "MCRB01".into(),
            adjudication_date: Some(date(2026, 3, 1)),
        }],
        ..common("PCN-2026-0003", "135.50", &["M545"])
    };
    secondary.lines = vec![ProfessionalLine {
        adjudications: vec![LineAdjudication {
            payer_id: "MCRB01".into(),
            paid_amount: dec("76.40"),
            procedure: Procedure::hc("97110"),
            revenue_code: None,
            units: dec("2"),
            adjustments: vec![
                Adjustment {
                    group: "CO".into(),
                    reason: "45".into(),
                    amount: dec("40.00"),
                    quantity: None,
                },
                Adjustment {
                    group: "PR".into(),
                    reason: "2".into(),
                    amount: dec("19.10"),
                    quantity: Some(dec("1")),
                },
            ],
            adjudication_date: date(2026, 3, 1),
        }],
        ..pline("97110", &["GP"], "135.50", "2", &[1], dos, "L1-0003")
    }];
    ProfessionalClaimSet {
        header: claim_set_header(),
        claims: vec![original, replacement, secondary, ambulance_claim()],
    }
}

/// An emergency ambulance run from the scene of a car accident to the hospital.
fn ambulance_claim() -> ProfessionalClaim {
    let day = date(2026, 2, 18);
    ProfessionalClaim {
        billing_provider: billing_provider(),
        subscriber: self_subscriber(),
        patient: None,
        payer: payer(),
        claim: common("PCN-2026-0004", "1037.50", &["S060X0A", "V4352XA"]),
        place_of_service: "41".into(),
        provider_signature: true,
        patient_paid: None,
        referring_provider: None,
        rendering_provider: None,
        service_facility: None,
        accident: Some(Accident {
            causes: vec![RelatedCause::AutoAccident],
            state: Some("IL".into()),
            date: Some(day),
        }),
        attachments: vec![Attachment {
            report_type: "AM".into(),
            transmission: "BM".into(),
            control_number: Some("RUN-20260218-07".into()),
        }],
        note: None,
        ambulance_transport: Some(AmbulanceTransport {
            patient_weight_lb: Some(dec("182")),
            reason: "A".into(),
            distance_miles: dec("12.5"),
            round_trip_purpose: None,
            stretcher_purpose: Some("PATIENT UNABLE TO SIT UPRIGHT".into()),
        }),
        ambulance_pickup: Some(AmbulanceLocation {
            name: None,
            address: addr("ROUTE 4 AND MAIN ST", "SPRINGFIELD", "IL", "62703"),
        }),
        ambulance_dropoff: Some(AmbulanceLocation {
            name: Some("GENERAL HOSPITAL".into()),
            address: addr("500 HOSPITAL DR", "SPRINGFIELD", "IL", "627015000"),
        }),
        lines: vec![
            pline("A0427", &["SH"], "850.00", "1", &[1, 2], day, "L1-0004"),
            pline("A0425", &["SH"], "187.50", "12.5", &[1], day, "L2-0004"),
        ],
    }
}

/// Returns an 837I set with an outpatient claim billed to the secondary payer (two lines, with
/// the primary's 2320/2330 and 2430 adjudication, an occurrence code) and an inpatient void
/// (frequency 8 with REF*F8, present-on-admission indicator, ICD-10-PCS procedures, DRG,
/// occurrence span, occurrence and value codes, operating and other operating physicians) for a
/// child patient.
pub fn institutional_set() -> InstitutionalClaimSet {
    let hospital = BillingProvider {
        name: PartyName::organization("GENERAL HOSPITAL"),
        npi: "9876540805".into(),
        tax_id: TaxId::Ein("987654321".into()),
        address: addr("500 HOSPITAL DR", "SPRINGFIELD", "IL", "627015000"),
        taxonomy: Some("282N00000X".into()),
    };
    let day = date(2026, 2, 10);
    let outpatient = InstitutionalClaim {
        billing_provider: hospital,
        subscriber: Subscriber {
            payer_responsibility: "S".into(),
            ..self_subscriber()
        },
        patient: None,
        payer: payer(),
        claim: ClaimCommon {
            medical_record_number: Some("MRN77".into()),
            other_payers: vec![OtherPayer {
                payer_responsibility: "P".into(),
                relationship: "18".into(),
                group_number: None,
                claim_filing_indicator: "MB".into(),
                adjustments: vec![Adjustment {
                    group: "CO".into(),
                    reason: "45".into(),
                    amount: dec("39.95"),
                    quantity: None,
                }],
                paid_amount: Some(dec("50.00")),
                remaining_patient_liability: None,
                benefits_assigned: "Y".into(),
                release_of_information: "Y".into(),
                subscriber_name: PersonName::new("DOE", "JANE"),
                subscriber_id: "1EG4TE5MK73".into(),
                payer_name: "MEDICARE PART A".into(),
                payer_id: "MCRA01".into(),
                adjudication_date: Some(date(2026, 2, 25)),
            }],
            ..common("HOSP-0001", "1289.95", &["R0789", "I10"])
        },
        facility_type: "13".into(),
        statement_from: day,
        statement_to: day,
        present_on_admission: Vec::new(),
        admitting_diagnosis: None,
        reasons_for_visit: vec!["R0789".into()],
        procedures: Vec::new(),
        admission_date: None,
        admission_type: None,
        admission_source: None,
        patient_status: "01".into(),
        drg: None,
        occurrence_spans: Vec::new(),
        occurrences: vec![Occurrence {
            code: "11".into(),
            date: date(2026, 2, 9),
        }],
        condition_codes: vec!["09".into()],
        value_codes: vec![("A1".into(), dec("15.31"))],
        attending_provider: Some(ClaimProvider {
            name: PartyName::Person(PersonName::new("JONES", "MARY")),
            npi: "1122334455".into(),
            taxonomy: None,
        }),
        operating_physician: None,
        other_operating_physician: None,
        lines: vec![
            InstitutionalLine {
                revenue_code: "0450".into(),
                procedure: Some(Procedure {
                    qualifier: "HC".into(),
                    code: "99284".into(),
                    modifiers: vec!["25".into()],
                }),
                charge: dec("1200.00"),
                unit_basis: "UN".into(),
                units: dec("1"),
                service_date: Some(DateRange::day(day)),
                line_control_number: Some("H1-1".into()),
                drug: None,
                adjudications: Vec::new(),
            },
            InstitutionalLine {
                revenue_code: "0300".into(),
                procedure: Some(Procedure::hc("85025")),
                charge: dec("89.95"),
                unit_basis: "UN".into(),
                units: dec("1"),
                service_date: Some(DateRange::day(day)),
                line_control_number: Some("H1-2".into()),
                drug: None,
                adjudications: vec![LineAdjudication {
                    payer_id: "MCRA01".into(),
                    paid_amount: dec("50.00"),
                    procedure: Procedure::hc("85025"),
                    revenue_code: Some("0300".into()),
                    units: dec("1"),
                    adjustments: vec![Adjustment {
                        group: "CO".into(),
                        reason: "45".into(),
                        amount: dec("39.95"),
                        quantity: None,
                    }],
                    adjudication_date: date(2026, 2, 25),
                }],
            },
        ],
    };
    let inpatient_void = InstitutionalClaim {
        subscriber: Subscriber {
            address: None,
            birth_date: None,
            gender: None,
            ..self_subscriber()
        },
        patient: Some(child_patient()),
        claim: ClaimCommon {
            frequency: ClaimFrequency::Void,
            payer_claim_number: Some("HOSPCLM123".into()),
            ..common("HOSP-0002", "4500", &["J189"])
        },
        facility_type: "11".into(),
        statement_from: date(2026, 1, 5),
        statement_to: date(2026, 1, 8),
        present_on_admission: vec!["Y".into()],
        admitting_diagnosis: Some("R0602".into()),
        reasons_for_visit: Vec::new(),
        procedures: vec![
            IcdProcedure {
                code: "0BH17EZ".into(),
                date: date(2026, 1, 5),
            },
            IcdProcedure {
                code: "5A1955Z".into(),
                date: date(2026, 1, 6),
            },
        ],
        admission_date: Some(date(2026, 1, 5)),
        admission_type: Some("1".into()),
        admission_source: Some("7".into()),
        patient_status: "01".into(),
        drg: Some("193".into()),
        occurrence_spans: vec![OccurrenceSpan {
            code: "74".into(),
            from: date(2026, 1, 6),
            to: date(2026, 1, 7),
        }],
        occurrences: vec![
            Occurrence {
                code: "11".into(),
                date: date(2026, 1, 3),
            },
            Occurrence {
                code: "42".into(),
                date: date(2026, 1, 8),
            },
        ],
        condition_codes: Vec::new(),
        value_codes: vec![("80".into(), dec("3"))],
        operating_physician: Some(ClaimProvider {
            name: PartyName::Person(PersonName::new("CUTTER", "SAM")),
            npi: "1777888995".into(),
            taxonomy: None,
        }),
        other_operating_physician: Some(ClaimProvider {
            name: PartyName::Person(PersonName::new("STITCH", "ADA")),
            npi: "1888999004".into(),
            taxonomy: None,
        }),
        lines: vec![InstitutionalLine {
            revenue_code: "0120".into(),
            procedure: None,
            charge: dec("4500.00"),
            unit_basis: "DA".into(),
            units: dec("3"),
            service_date: None,
            line_control_number: None,
            drug: None,
            adjudications: Vec::new(),
        }],
        ..outpatient.clone()
    };
    InstitutionalClaimSet {
        header: claim_set_header(),
        claims: vec![outpatient, inpatient_void],
    }
}

/// Returns a 270 asking for plan coverage and office visits for a dependent.
pub fn eligibility_inquiry() -> EligibilityInquiry {
    EligibilityInquiry {
        header: header("ELIG0001"),
        payer_name: "ACME HEALTH PLAN".into(),
        payer_id: "ACME01".into(),
        provider_name: PartyName::organization("SUNRISE FAMILY MEDICINE"),
        provider_npi: "1234567893".into(),
        trace: Trace {
            kind: "1".into(),
            number: "TRACE-0001".into(),
            originator: Some("1123456789".into()),
        },
        subscriber_name: PersonName::new("DOE", "JANE"),
        member_id: "XJ123456789".into(),
        subscriber_birth_date: Some(date(1980, 4, 15)),
        subscriber_gender: Some("F".into()),
        dependent: Some(Dependent {
            name: PersonName::new("DOE", "TIMMY"),
            birth_date: date(2015, 8, 1),
            gender: Some("M".into()),
        }),
        service_date: Some(DateRange::day(date(2026, 3, 2))),
        service_types: vec!["30".into(), "98".into()],
    }
}

/// Returns a 276 asking about two claims of a self-subscriber.
pub fn claim_status_inquiry() -> ClaimStatusInquiry {
    ClaimStatusInquiry {
        header: header("STAT0001"),
        payer_name: "ACME HEALTH PLAN".into(),
        payer_id: "ACME01".into(),
        receiver_name: PartyName::organization("MEDBILL CLINIC BILLING"),
        receiver_id: "MB123456".into(),
        provider_name: PartyName::organization("SUNRISE FAMILY MEDICINE"),
        provider_npi: "1234567893".into(),
        subscriber_name: PersonName::new("DOE", "JANE"),
        member_id: "XJ123456789".into(),
        subscriber_birth_date: Some(date(1980, 4, 15)),
        subscriber_gender: Some("F".into()),
        dependent: None::<StatusDependent>,
        claims: vec![
            StatusClaimQuery {
                trace_number: "ST-TRACE-1".into(),
                payer_claim_number: Some("PAYERCLM998877".into()),
                bill_type: None,
                patient_control_number: Some("PCN-2026-0001".into()),
                total_charge: Some(dec("185.50")),
                service_date: Some(DateRange::day(date(2026, 2, 20))),
            },
            StatusClaimQuery {
                trace_number: "ST-TRACE-2".into(),
                payer_claim_number: None,
                bill_type: Some("131".into()),
                patient_control_number: Some("HOSP-0001".into()),
                total_charge: Some(dec("1289.95")),
                service_date: Some(DateRange {
                    from: date(2026, 2, 10),
                    to: Some(date(2026, 2, 10)),
                }),
            },
        ],
    }
}

/// Returns a 999 acknowledging two 837 sets: one accepted, one rejected with an IK3/IK4 error.
pub fn functional_ack() -> FunctionalAck {
    FunctionalAck {
        functional_id: "HC".into(),
        group_control_number: "101".into(),
        version: Some("005010X222A1".into()),
        sets: vec![
            SetAck {
                set_id: "837".into(),
                control_number: "0001".into(),
                version: Some("005010X222A1".into()),
                errors: Vec::new(),
                status: "A".into(),
                codes: Vec::new(),
            },
            SetAck {
                set_id: "837".into(),
                control_number: "0002".into(),
                version: Some("005010X222A1".into()),
                errors: vec![SegmentError {
                    segment_id: "CLM".into(),
                    position: 22,
                    loop_id: Some("2300".into()),
                    code: Some("8".into()),
                    elements: vec![ElementError {
                        position: ElementPosition {
                            element: 5,
                            component: Some(3),
                            repetition: None,
                        },
                        reference: Some("1325".into()),
                        code: "7".into(),
                        bad_value: Some("9".into()),
                    }],
                }],
                status: "R".into(),
                codes: vec!["5".into()],
            },
        ],
        status: "P".into(),
        included: 2,
        received: 2,
        accepted: 1,
        codes: Vec::new(),
    }
}

/// Returns a TA1 accepting interchange 101.
pub fn interchange_ack() -> InterchangeAck {
    InterchangeAck {
        control_number: 101,
        date: date(2026, 3, 2),
        time: NaiveTime::from_hms_opt(9, 31, 0).unwrap_or_default(),
        status: "A".into(),
        note_code: "000".into(),
    }
}

fn status(category: &str, code: &str, entity: Option<&str>) -> StatusCode {
    StatusCode {
        category: category.into(),
        category_description: medbill_codesets::short_description(
            medbill_codesets::CodeList::ClaimStatusCategory,
            category,
        )
        .map(str::to_owned),
        status: code.into(),
        entity: entity.map(str::to_owned),
    }
}

/// Returns a 277CA for one billing provider: an accepted claim (A2:20 with REF*1K) and a claim
/// rejected for an invalid rendering NPI (A7:562:82) with a rejected line (2220D).
pub fn claim_acknowledgment() -> ClaimAcknowledgment {
    let day = date(2026, 3, 3);
    ClaimAcknowledgment {
        header: header("ACK0001"),
        payer_name: "ACME HEALTH PLAN".into(),
        payer_id: "ACME01".into(),
        source_trace: "277CA000001".into(),
        received: day,
        processed: day,
        receiver_name: PartyName::organization("MEDBILL CLINIC BILLING"),
        receiver_id: "MB123456".into(),
        receiver_trace: "BATCH0001".into(),
        receiver_status: StatusInfo {
            codes: vec![status("A1", "19", Some("PR"))],
            effective_date: Some(day),
            action: Some("WQ".into()),
            charge: Some(dec("385.50")),
            paid: None,
            message: None,
        },
        providers: vec![AcknowledgedProvider {
            name: PartyName::organization("SUNRISE FAMILY MEDICINE"),
            npi: "1234567893".into(),
            trace: "277CA000001-1".into(),
            claims: vec![
                AcknowledgedClaim {
                    patient_name: PersonName::new("DOE", "JANE"),
                    member_id: "XJ123456789".into(),
                    patient_control_number: "PCN-2026-0001".into(),
                    status: StatusInfo {
                        codes: vec![status("A2", "20", None)],
                        effective_date: Some(day),
                        action: Some("WQ".into()),
                        charge: Some(dec("185.50")),
                        paid: None,
                        message: None,
                    },
                    payer_claim_number: Some("SIM0000000001".into()),
                    bill_type: None,
                    service_date: DateRange::day(date(2026, 2, 20)),
                    lines: Vec::new(),
                },
                AcknowledgedClaim {
                    patient_name: PersonName::new("ROE", "RICHARD"),
                    member_id: "XR987654321".into(),
                    patient_control_number: "PCN-2026-0002".into(),
                    status: StatusInfo {
                        codes: vec![status("A7", "562", Some("82"))],
                        effective_date: Some(day),
                        action: Some("U".into()),
                        charge: Some(dec("200")),
                        paid: None,
                        message: Some("RENDERING NPI FAILS ITS CHECK DIGIT".into()),
                    },
                    payer_claim_number: None,
                    bill_type: None,
                    service_date: DateRange {
                        from: date(2026, 2, 21),
                        to: Some(date(2026, 2, 22)),
                    },
                    lines: vec![LineStatus {
                        procedure: Procedure::hc("99213"),
                        charge: Some(dec("200")),
                        paid: None,
                        revenue_code: None,
                        units: Some(dec("1")),
                        statuses: vec![StatusInfo {
                            codes: vec![status("A7", "562", Some("82"))],
                            effective_date: Some(day),
                            action: Some("U".into()),
                            charge: Some(dec("200")),
                            paid: None,
                            message: None,
                        }],
                        line_control_number: Some("LN-2".into()),
                        service_date: Some(DateRange::day(date(2026, 2, 21))),
                    }],
                },
            ],
        }],
    }
}

/// Returns a 277 answering [`claim_status_inquiry`]: the first claim pending (P1:20), the second
/// not found (A4:35).
pub fn claim_status_answer() -> ClaimStatusAnswer {
    let day = date(2026, 3, 4);
    ClaimStatusAnswer {
        header: header("STAT0001"),
        payer_name: "ACME HEALTH PLAN".into(),
        payer_id: "ACME01".into(),
        receiver_name: PartyName::organization("MEDBILL CLINIC BILLING"),
        receiver_id: "MB123456".into(),
        provider_name: PartyName::organization("SUNRISE FAMILY MEDICINE"),
        provider_npi: "1234567893".into(),
        subscriber_name: PersonName::new("DOE", "JANE"),
        member_id: "XJ123456789".into(),
        dependent: None,
        claims: vec![
            AnsweredClaim {
                trace_number: "ST-TRACE-1".into(),
                statuses: vec![StatusInfo {
                    codes: vec![status("P1", "20", None)],
                    effective_date: Some(day),
                    action: None,
                    charge: Some(dec("185.5")),
                    paid: Some(dec("0")),
                    message: None,
                }],
                payer_claim_number: Some("PAYERCLM998877".into()),
                bill_type: None,
                patient_control_number: Some("PCN-2026-0001".into()),
                service_date: Some(DateRange::day(date(2026, 2, 20))),
                lines: Vec::new(),
            },
            AnsweredClaim {
                trace_number: "ST-TRACE-2".into(),
                statuses: vec![StatusInfo {
                    codes: vec![status("A4", "35", None)],
                    effective_date: Some(day),
                    action: None,
                    charge: Some(dec("1289.95")),
                    paid: None,
                    message: None,
                }],
                payer_claim_number: None,
                bill_type: Some("131".into()),
                patient_control_number: Some("HOSP-0001".into()),
                service_date: Some(DateRange {
                    from: date(2026, 2, 10),
                    to: Some(date(2026, 2, 10)),
                }),
                lines: Vec::new(),
            },
        ],
    }
}

/// Returns a 278 request: a knee arthroplasty (SV1) and its physical therapy visits, with a
/// servicing facility, two diagnoses and requested dates.
pub fn review_request() -> ServicesReview {
    use crate::model::review::{ReviewEvent, ReviewKind, ReviewProvider, ReviewService};
    let service = |code: &str, units: i64, revenue: Option<&str>| ReviewService {
        traces: Vec::new(),
        request_category: "HS".into(),
        certification_type: "I".into(),
        decision: None,
        dates: Some(DateRange {
            from: date(2026, 3, 2),
            to: Some(date(2026, 4, 30)),
        }),
        revenue_code: revenue.map(str::to_owned),
        procedure: Procedure::hc(code),
        units: Decimal::from(units),
        certified_units: None,
    };
    ServicesReview {
        kind: ReviewKind::Request,
        header: header("AUTH0001"),
        payer_name: "ACME HEALTH PLAN".into(),
        payer_id: "ACME01".into(),
        requester_name: PartyName::organization("SUNRISE FAMILY MEDICINE"),
        requester_npi: "1234567893".into(),
        subscriber_name: PersonName::new("DOE", "JANE"),
        member_id: "XJ123456789".into(),
        subscriber_birth_date: Some(date(1980, 4, 15)),
        rejections: Vec::new(),
        event: Some(ReviewEvent {
            traces: vec![Trace {
                kind: "1".into(),
                number: "AUTH-TRACE-1".into(),
                originator: Some("1123456789".into()),
            }],
            request_category: "HS".into(),
            certification_type: "I".into(),
            service_type: "2".into(),
            place_of_service: Some("22".into()),
            level_of_service: Some("E".into()),
            decision: None,
            reference: None,
            event_dates: Some(DateRange {
                from: date(2026, 3, 2),
                to: Some(date(2026, 4, 30)),
            }),
            diagnoses: vec!["M1711".into(), "E119".into()],
            notes: Some("PAIN NOT RELIEVED BY 6 MONTHS OF CONSERVATIVE THERAPY".into()),
            provider: Some(ReviewProvider {
                entity: "FA".into(),
                name: PartyName::organization("SUNRISE SURGERY CENTER"),
                npi: "1245319599".into(),
            }),
            services: vec![
                service("27447", 1, None),
                service("97110", 12, Some("0420")),
            ],
        }),
    }
}

/// Returns the payer's 278 response to [`review_request`]: the surgery certified, the therapy
/// certified partially (8 of 12 units) with a reason.
pub fn review_response() -> ServicesReview {
    use crate::model::review::{ReviewDecision, ReviewKind};
    let mut r = review_request();
    r.kind = ReviewKind::Response;
    r.header.reference = "AUTH0001".into();
    let certified = Some(DateRange {
        from: date(2026, 3, 2),
        to: Some(date(2026, 4, 30)),
    });
    if let Some(ev) = r.event.as_mut() {
        ev.traces = vec![Trace {
            kind: "2".into(),
            number: "AUTH-TRACE-1".into(),
            originator: Some("1123456789".into()),
        }];
        ev.decision = Some(ReviewDecision {
            action: "A2".into(),
            authorization_number: Some("CERT778899".into()),
            reason: None,
            certified,
        });
        ev.reference = Some("REV-4411".into());
        ev.notes = None;
        let decided = [("A1", None, "1"), ("A2", Some("ZZ"), "8")];
        for (s, (action, reason, units)) in ev.services.iter_mut().zip(decided) {
            s.decision = Some(ReviewDecision {
                action: action.into(),
                authorization_number: Some("CERT778899".into()),
                reason: reason.map(str::to_owned),
                certified,
            });
            s.certified_units = Decimal::from_str_exact(units).ok();
        }
    }
    r
}

/// A balanced 835 paying three claims by EFT and reversing a fourth: a partly paid claim with
/// deductible, coinsurance and copay (PR-1/2/3), CO-45, a restated code (SVC06), REF*6R and
/// AMT*B6; a denial (CO-197 with LQ*HE N54); a reversal (CLP02 22) and its correction
/// (frequency 7); PLB interest (L6) and a recoupment (WO). BPR02 130.50.
pub fn remittance() -> super::RemittanceAdvice<'static> {
    use crate::transactions::era835 as m;
    use std::borrow::Cow::Borrowed as B;
    let adj = |group: &'static str, reason: &'static str, amount: &str| m::Adjustment {
        group: B(group),
        reason: B(reason),
        amount: dec(amount),
        quantity: None,
    };
    let dtm = |qualifier: &'static str, date: &'static str| m::DateRef {
        qualifier: B(qualifier),
        date: B(date),
    };
    let reference = |qualifier: &'static str, value: &'static str| m::Reference {
        qualifier: B(qualifier),
        value: B(value),
    };
    let proc_ = |code: &'static str| m::Procedure {
        qualifier: B("HC"),
        code: B(code),
        ..m::Procedure::default()
    };
    let patient = |last: &'static str, first: &'static str, id: &'static str| m::Name {
        entity: B("QC"),
        entity_type: B("1"),
        last: Some(B(last)),
        first: Some(B(first)),
        id_qualifier: Some(B("MI")),
        id: Some(B(id)),
        ..m::Name::default()
    };
    let line =
        |code: &'static str, charge: &str, paid: &str, lcn: &'static str| m::ServicePayment {
            procedure: proc_(code),
            charge: dec(charge),
            paid: dec(paid),
            units: Some(dec("1")),
            dates: [dtm("472", "20260310")].into_iter().collect(),
            references: [reference("6R", lcn)].into_iter().collect(),
            ..m::ServicePayment::default()
        };
    let claim = |pcn: &'static str, status: &'static str, charge: &str, paid: &str, pr: &str| {
        m::ClaimPayment {
            header_number: Some(B("1")),
            patient_control_number: B(pcn),
            status_code: B(status),
            charge: dec(charge),
            paid: dec(paid),
            patient_responsibility: Some(dec(pr)),
            filing_indicator: Some(B("12")),
            facility_type: Some(B("11")),
            frequency: Some(B("1")),
            dates: [dtm("232", "20260310"), dtm("233", "20260310")]
                .into_iter()
                .collect(),
            ..m::ClaimPayment::default()
        }
    };

    let mut office = line("99213", "200", "104", "PCN0001-1");
    office.procedure.modifiers.push(B("25"));
    office.adjustments = [
        adj("CO", "45", "50"),
        adj("PR", "1", "20"),
        adj("PR", "2", "26"),
    ]
    .into_iter()
    .collect();
    office.amounts.push(m::AmountRef {
        qualifier: B("B6"),
        amount: dec("150"),
    });
    let mut lab = line("85027", "100", "50", "PCN0001-2");
    lab.submitted_procedure = Some(Box::new(proc_("85025")));
    lab.adjustments = [adj("CO", "45", "40"), adj("PR", "3", "10")]
        .into_iter()
        .collect();
    lab.amounts.push(m::AmountRef {
        qualifier: B("B6"),
        amount: dec("60"),
    });
    let mut paid = claim("PCN0001", "1", "300", "154", "56");
    paid.payer_claim_control_number = Some(B("SIM0000000001"));
    paid.names
        .push(patient("TESTPATIENT", "AVERY", "SPX100000001"));
    paid.services = vec![office, lab];

    let mut scan = line("70450", "120", "0", "PCN0002-1");
    scan.adjustments = [adj("CO", "197", "120")].into_iter().collect();
    scan.remarks.push(m::Remark {
        qualifier: B("HE"),
        code: B("N54"),
    });
    let mut denied = claim("PCN0002", "4", "120", "0", "0");
    denied.payer_claim_control_number = Some(B("SIM0000000002"));
    denied
        .names
        .push(patient("SAMPLEMAN", "JORDAN", "SPX100000002"));
    denied.services = vec![scan];

    let mut reversal = claim("PCN0003", "22", "-80", "-60", "0");
    reversal.payer_claim_control_number = Some(B("SIM0000000003"));
    reversal.adjustments = [adj("CO", "45", "-20")].into_iter().collect();
    reversal
        .names
        .push(patient("FICTIONAL", "CASEY", "SPX100000005"));

    let mut visit = line("99212", "80", "64", "PCN0003-1");
    visit.adjustments = [adj("PR", "2", "16")].into_iter().collect();
    let mut correction = claim("PCN0003", "1", "80", "64", "16");
    correction.payer_claim_control_number = Some(B("SIM0000000004"));
    correction.frequency = Some(B("7"));
    correction
        .names
        .push(patient("FICTIONAL", "CASEY", "SPX100000005"));
    correction.services = vec![visit];

    let plb = |reason: &'static str, reference: Option<&'static str>, amount: &str| {
        m::ProviderAdjustment {
            provider_id: B("1234567893"),
            fiscal_period_date: B("20261231"),
            reason: B(reason),
            reference: reference.map(B),
            amount: dec(amount),
            segment_index: 0,
        }
    };
    let remittance = m::Remittance {
        control_number: B("0001"),
        payment: m::Payment {
            handling: B("I"),
            amount: dec("130.5"),
            credit_debit: B("C"),
            method: B("ACH"),
            format: Some(B("CCP")),
            originating_company_id: Some(B("1512345678")),
            date: Some(B("20260320")),
            ..m::Payment::default()
        },
        trace: Some(m::Trace {
            type_code: B("1"),
            number: B("EFT0000000001"),
            originator: Some(B("1512345678")),
            supplemental: None,
        }),
        references: vec![reference("EV", "MEDBILL01")],
        dates: vec![dtm("405", "20260318")],
        payer: m::Party {
            entity: B("PR"),
            name: B("SIMULATED PPO HEALTH"),
            id_qualifier: Some(B("XV")),
            id: Some(B("SIMPPO")),
            address_lines: vec![B("100 PAYER WAY")],
            city: Some(B("HARTFORD")),
            state: Some(B("CT")),
            postal_code: Some(B("06101")),
            contacts: vec![m::Contact {
                function: B("BL"),
                name: Some(B("PROVIDER SERVICES")),
                numbers: vec![(B("TE"), B("8005550199"))],
            }],
            ..m::Party::default()
        },
        payee: m::Party {
            entity: B("PE"),
            name: B("MEDBILL CLINIC"),
            id_qualifier: Some(B("XX")),
            id: Some(B("1234567893")),
            address_lines: vec![B("1 CLINIC ROAD")],
            city: Some(B("SPRINGFIELD")),
            state: Some(B("IL")),
            postal_code: Some(B("62701")),
            references: vec![reference("TJ", "123456789")],
            ..m::Party::default()
        },
        header_numbers: vec![m::HeaderNumber {
            number: B("1"),
            ..m::HeaderNumber::default()
        }],
        claims: vec![paid, denied, reversal, correction],
        provider_adjustments: vec![
            plb("L6", Some("PCN0001"), "-2.5"),
            plb("WO", Some("SIM0000000003"), "30"),
        ],
        ..m::Remittance::default()
    };
    super::RemittanceAdvice {
        remittance,
        accounts: Some(super::EftAccounts {
            payer_routing: "011000015".into(),
            payer_account: "900001".into(),
            payee_routing: "071000013".into(),
            payee_account: "123456".into(),
        }),
    }
}
