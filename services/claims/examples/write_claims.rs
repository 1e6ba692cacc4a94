//! Writes 837 interchanges with the claims service's own writer (`submission::writer`) from
//! sample claims, for independent validation (crates/x12/scripts/validate-with-pyx12.sh):
//!
//! - `claims-837p-cob.x12`, `claims-837i-cob.x12`: secondary claims made by `cob::secondary_claim`
//!   from a primary's adjudication (2320/2330A/2330B/2430 loops);
//! - `claims-837p-corrected.x12`: a replacement (frequency 7, REF*F8);
//! - `claims-837i-void.x12`: a void (frequency 8, REF*F8).
//!
//! Usage: `cargo run -p medbill-claims --example write_claims -- DIR`

use std::collections::HashMap;
use std::path::PathBuf;

use chrono::{NaiveDate, Utc};
use medbill_claims::adjudication::{
    Adjudication, Adjustment, AdjustmentGroup, AppliedAdjudication, ClaimPaymentStatus,
    LineAdjudication,
};
use medbill_claims::details::{
    ClaimDetails, ClaimPerson, CoverageSnapshot, Institutional, PostalAddress,
};
use medbill_claims::providers::{Provider, ProviderKind, ProviderName, TaxId};
use medbill_claims::submission::writer::{
    ClaimSet, RouteIdentity, SubmitterContact, institutional_claim, professional_claim, write_batch,
};
use medbill_claims::{Claim, ClaimLine, ClaimStatus, ClaimType, FrequencyCode, cob};
use medbill_domain::{ClaimId, Money, Npi, PatientControlNumber};
use medbill_proto::eligibility::v1 as elig;
use medbill_x12::write::Usage;
use rust_decimal::Decimal;

const BILLING: &str = "1234567893";
const ATTENDING: &str = "1245319599";

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("sample date")
}

fn money(s: &str) -> Money {
    Money::parse(s).expect("sample amount")
}

fn address() -> PostalAddress {
    PostalAddress {
        line1: "1 MAIN ST".into(),
        city: "SPRINGFIELD".into(),
        state: "IL".into(),
        postal_code: "627010001".into(),
        ..PostalAddress::default()
    }
}

fn providers() -> HashMap<String, Provider> {
    let now = Utc::now();
    let provider = |npi: &str, kind, last: &str, first: &str| Provider {
        npi: Npi::parse(npi).expect("sample NPI"),
        kind,
        name: ProviderName {
            last_or_organization: last.into(),
            first: first.into(),
            middle: String::new(),
            suffix: String::new(),
        },
        tax_id: Some(TaxId::Ein("123456789".into())),
        taxonomy_code: Some("282N00000X".into()),
        address: Some(address()),
        pay_to_address: None,
        created_at: now,
        updated_at: now,
    };
    [
        provider(
            BILLING,
            ProviderKind::Organization,
            "GENERAL HOSPITAL BILLING",
            "",
        ),
        provider(ATTENDING, ProviderKind::Individual, "CARE", "ANNA"),
    ]
    .into_iter()
    .map(|p| (p.npi.as_str().to_owned(), p))
    .collect()
}

fn details(order: &str, member_id: &str, payer_name: &str) -> ClaimDetails {
    ClaimDetails {
        patient: Some(ClaimPerson {
            last_name: "TESTPATIENT".into(),
            first_name: "AVERY".into(),
            birth_date: Some(day("1985-03-14")),
            gender: Some("F".into()),
            address: Some(PostalAddress {
                line1: "12 ELM ST".into(),
                city: "SPRINGFIELD".into(),
                state: "IL".into(),
                postal_code: "62702".into(),
                ..PostalAddress::default()
            }),
            ..ClaimPerson::default()
        }),
        coverage: Some(CoverageSnapshot {
            member_id: member_id.into(),
            group_number: "GRP100".into(),
            payer_name: payer_name.into(),
            subscriber_first_name: "AVERY".into(),
            subscriber_last_name: "TESTPATIENT".into(),
            relationship_to_subscriber: "18".into(),
            order: order.into(),
            ..CoverageSnapshot::default()
        }),
        ..ClaimDetails::default()
    }
}

fn line(n: u32, code: &str, revenue: Option<&str>, charge: &str, pointers: Vec<u32>) -> ClaimLine {
    ClaimLine {
        line_number: n,
        line_control_number: format!("LINE{n}"),
        procedure_code: code.into(),
        modifiers: vec![],
        revenue_code: revenue.map(str::to_owned),
        charge: money(charge),
        units: Decimal::ONE,
        service_date: day("2026-03-02"),
        diagnosis_pointers: pointers,
        prior_authorization_number: None,
        referral_number: None,
    }
}

fn professional(pcn: &str) -> Claim {
    let now = Utc::now();
    Claim {
        id: ClaimId::new(),
        patient_control_number: PatientControlNumber::parse(pcn).expect("sample CLM01"),
        claim_type: ClaimType::Professional,
        status: ClaimStatus::Ready,
        frequency_code: FrequencyCode::Original,
        payer_claim_control_number: None,
        coverage_id: "cov-primary".into(),
        payer_id: "SIMPPO".into(),
        patient_ref: "pat-1".into(),
        billing_provider_npi: Npi::parse(BILLING).expect("sample NPI"),
        rendering_provider_npi: None,
        place_of_service: Some("11".into()),
        facility_type_code: None,
        diagnoses: vec!["E119".into(), "I10".into()],
        lines: vec![
            line(1, "99213", None, "125.00", vec![1]),
            line(2, "G0439", None, "80.55", vec![2, 1]),
        ],
        total_charge: money("205.55"),
        service_date_from: day("2026-03-02"),
        service_date_to: day("2026-03-02"),
        encounter_ref: None,
        details: details("PRIMARY", "SPX100000001", "SIMULATED PPO HEALTH"),
        submission_batch_id: None,
        created_at: now,
        updated_at: now,
        scrub_findings: vec![],
        original_claim_id: None,
        superseded_by_claim_id: None,
        adjudication: None,
        coordination: Default::default(),
    }
}

fn institutional(pcn: &str) -> Claim {
    let mut claim = professional(pcn);
    claim.claim_type = ClaimType::Institutional;
    claim.place_of_service = None;
    claim.facility_type_code = Some("13".into());
    claim.lines = vec![
        line(1, "99283", Some("0450"), "125.00", vec![]),
        line(2, "G0439", Some("0510"), "80.55", vec![]),
    ];
    claim.details.institutional = Some(Institutional {
        admission_type: Some("1".into()),
        admission_source: Some("7".into()),
        discharge_status: "01".into(),
        attending_provider_npi: ATTENDING.into(),
        ..Institutional::default()
    });
    claim
}

fn adjustment(group: AdjustmentGroup, reason: &str, amount: &str) -> Adjustment {
    Adjustment {
        group,
        reason: reason.into(),
        amount: money(amount),
        quantity: None,
    }
}

/// The primary paid 120.00 of 205.55: 45.55 contractual, 40.00 to the patient.
fn primary_adjudication(claim: &Claim) -> AppliedAdjudication {
    use AdjustmentGroup::{Co, Pr};
    let adjudicated = |i: usize, paid: &str, adjustments| LineAdjudication {
        line_control_number: Some(claim.lines[i].line_control_number.clone()),
        procedure_code: claim.lines[i].procedure_code.clone(),
        charge: claim.lines[i].charge,
        paid: money(paid),
        allowed: None,
        units: Some(Decimal::ONE),
        adjustments,
        remarks: vec![],
    };
    AppliedAdjudication {
        id: uuid::Uuid::now_v7(),
        adjudication: Adjudication {
            era_id: "era-1".into(),
            claim_payment_id: "cp-1".into(),
            status_code: ClaimPaymentStatus::ProcessedPrimary,
            charge: claim.total_charge,
            paid: money("120.00"),
            patient_responsibility: Some(money("40.00")),
            payer_claim_control_number: Some("ICN-PRIMARY-1".into()),
            adjustments: vec![adjustment(Pr, "3", "10.00")],
            remarks: vec![],
            lines: vec![
                adjudicated(
                    0,
                    "80.00",
                    vec![adjustment(Co, "45", "25.00"), adjustment(Pr, "2", "20.00")],
                ),
                adjudicated(
                    1,
                    "50.00",
                    vec![adjustment(Co, "45", "20.55"), adjustment(Pr, "1", "10.00")],
                ),
            ],
            payment_date: Some(day("2026-04-10")),
        },
        applied_at: Utc::now(),
        status_before: ClaimStatus::Accepted,
        status_after: ClaimStatus::Paid,
        reverses: None,
        reversed_by: None,
    }
}

/// The secondary claim COB makes from `primary`, through the service's own builder.
fn secondary_of(primary: &Claim) -> Claim {
    let coverage = elig::Coverage {
        id: "cov-secondary".into(),
        patient_ref: primary.patient_ref.clone(),
        payer_id: "SIMHMO".into(),
        payer_name: "SIMULATED HMO CARE".into(),
        member_id: "HMO0000001".into(),
        group_number: "HMOGRP30".into(),
        subscriber_first_name: "AVERY".into(),
        subscriber_last_name: "TESTPATIENT".into(),
        relationship_to_subscriber: "18".into(),
        coverage_order: elig::CoverageOrder::Secondary.into(),
        effective_date: "2026-01-01".into(),
        ..Default::default()
    };
    let applied = primary_adjudication(primary);
    let pcn = cob::derived_patient_control_numbers(&primary.patient_control_number)
        .into_iter()
        .next()
        .expect("a derived CLM01");
    let new = cob::secondary_claim(
        primary,
        &coverage,
        &applied,
        PatientControlNumber::parse(&pcn).expect("derived CLM01"),
    );
    let mut secondary = primary.clone();
    secondary.id = ClaimId::new();
    secondary.patient_control_number = new.patient_control_number;
    secondary.coverage_id = new.coverage_id;
    secondary.payer_id = new.payer_id;
    secondary.details = new.details;
    secondary.coordination.primary_claim_id = Some(primary.id);
    secondary
}

fn write(
    dir: &std::path::Path,
    name: &str,
    claim: &Claim,
    control: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let providers = providers();
    let set = match claim.claim_type {
        ClaimType::Professional => {
            ClaimSet::Professional(vec![professional_claim(claim, &providers)?])
        }
        ClaimType::Institutional => {
            ClaimSet::Institutional(vec![institutional_claim(claim, &providers)?])
        }
    };
    let route = RouteIdentity {
        sender_id: "MEDBILL".into(),
        receiver_id: claim.payer_id.clone(),
        receiver_name: claim.payer_id.clone(),
        usage: Usage::Test,
    };
    let contact = SubmitterContact {
        name: "GENERAL HOSPITAL BILLING".into(),
        contact_name: "EDI DESK".into(),
        phone: "2175550100".into(),
    };
    let text = write_batch(
        set,
        &route,
        &contact,
        control,
        1,
        &format!("BATCH{control}"),
    )?;
    std::fs::write(dir.join(format!("{name}.x12")), text)?;
    println!("wrote {name}.x12");
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = PathBuf::from(std::env::args().nth(1).ok_or("usage: write_claims DIR")?);
    std::fs::create_dir_all(&dir)?;

    write(
        &dir,
        "claims-837p-cob",
        &secondary_of(&professional("PCN-COB-P-0001")),
        101,
    )?;
    write(
        &dir,
        "claims-837i-cob",
        &secondary_of(&institutional("PCN-COB-I-0001")),
        102,
    )?;

    let mut corrected = professional("PCN-CORR-0001-R1");
    corrected.frequency_code = FrequencyCode::Replacement;
    corrected.payer_claim_control_number = Some("SIM0000000007".into());
    write(&dir, "claims-837p-corrected", &corrected, 103)?;

    // An authorization number on the claim (2300 REF*G1) and another on its second line (2400).
    let mut authorized = professional("PCN-AUTH-0001");
    authorized.details.prior_authorization_number = Some("SIMAUTH000000001".into());
    if let Some(line) = authorized.lines.get_mut(1) {
        line.prior_authorization_number = Some("SIMAUTH000000002".into());
    }
    write(&dir, "claims-837p-authorized", &authorized, 105)?;

    let mut void = institutional("PCN-VOID-0001-V1");
    void.frequency_code = FrequencyCode::Void;
    void.payer_claim_control_number = Some("SIM0000000008".into());
    write(&dir, "claims-837i-void", &void, 104)?;
    Ok(())
}
