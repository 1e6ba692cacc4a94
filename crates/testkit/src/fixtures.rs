//! Records a test needs on file before the call it is about: the billing provider every sample
//! claim names, payer-sim's demo member's coverage and an office-visit claim.

use medbill_proto::claims::v1 as claims;
use medbill_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use medbill_proto::common::v1::Address;
use medbill_proto::eligibility::v1 as eligibility;
use medbill_runtime::client::TracedChannel;

/// The billing provider NPI the sample claims use (valid check digit).
pub const BILLING_NPI: &str = "1234567893";

/// A billing organisation with an EIN, a taxonomy and a street address.
pub fn billing_provider() -> claims::Provider {
    claims::Provider {
        npi: BILLING_NPI.to_owned(),
        kind: claims::ProviderKind::Organization.into(),
        organization_name: "GENERAL HOSPITAL BILLING".to_owned(),
        tax_id_type: claims::TaxIdType::Ein.into(),
        tax_id: "123456789".to_owned(),
        taxonomy_code: "282N00000X".to_owned(),
        address: Some(Address {
            line1: "1 MAIN ST".to_owned(),
            city: "SPRINGFIELD".to_owned(),
            state: "IL".to_owned(),
            postal_code: "627010001".to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Registers `provider` through CreateProvider (idempotent: its NPI is the key, so calling it
/// twice is harmless).
///
/// # Errors
/// The call's status.
pub async fn register_provider(
    client: &mut ClaimsServiceClient<TracedChannel>,
    provider: claims::Provider,
) -> Result<claims::Provider, tonic::Status> {
    let answer = client
        .create_provider(claims::CreateProviderRequest {
            idempotency_key: format!("provider-{}", provider.npi),
            provider: Some(provider),
        })
        .await?;
    Ok(answer.into_inner().provider.unwrap_or_default())
}

/// A patient who is the subscriber (payer-sim's demo member Avery Testpatient, born 1985-03-14),
/// with every demographic field the 837 needs. Synthetic: no real person.
pub fn patient_demographics() -> claims::ClaimDemographics {
    claims::ClaimDemographics {
        patient: Some(claims::ClaimPerson {
            name: Some(medbill_proto::common::v1::PersonName {
                last_name: "TESTPATIENT".to_owned(),
                first_name: "AVERY".to_owned(),
                ..Default::default()
            }),
            birth_date: "1985-03-14".to_owned(),
            gender: "F".to_owned(),
            address: Some(Address {
                line1: "12 ELM ST".to_owned(),
                city: "SPRINGFIELD".to_owned(),
                state: "IL".to_owned(),
                postal_code: "62702".to_owned(),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

/// Payer-sim's demo member SPX100000001 (Avery Testpatient, born 1985-03-14) as the primary
/// subscriber of the simulated PPO from 2026-01-01, for `patient_ref`. Synthetic: no real person.
pub fn demo_member_coverage(
    idempotency_key: &str,
    patient_ref: &str,
) -> eligibility::CreateCoverageRequest {
    eligibility::CreateCoverageRequest {
        idempotency_key: idempotency_key.to_owned(),
        patient_ref: patient_ref.to_owned(),
        payer_id: "SIMPPO".to_owned(),
        payer_name: "SIMULATED PPO HEALTH".to_owned(),
        coverage_order: eligibility::CoverageOrder::Primary.into(),
        member_id: "SPX100000001".to_owned(),
        subscriber_first_name: "AVERY".to_owned(),
        subscriber_last_name: "TESTPATIENT".to_owned(),
        subscriber_birth_date: "1985-03-14".to_owned(),
        effective_date: "2026-01-01".to_owned(),
        ..Default::default()
    }
}

/// An office visit (99213, 130.00 on 2026-05-04, hypertension I10) for the demo member's
/// coverage, billed by [`billing_provider`] to the simulated PPO.
pub fn office_visit_claim(pcn: &str, coverage_id: &str, patient_ref: &str) -> claims::ClaimInput {
    claims::ClaimInput {
        patient_control_number: pcn.to_owned(),
        claim_type: claims::ClaimType::Professional.into(),
        coverage_id: coverage_id.to_owned(),
        payer_id: "SIMPPO".to_owned(),
        patient_ref: patient_ref.to_owned(),
        billing_provider_npi: BILLING_NPI.to_owned(),
        place_of_service: "11".to_owned(),
        diagnoses: vec!["I10".to_owned()],
        lines: vec![claims::ClaimLine {
            procedure_code: "99213".to_owned(),
            charge: "130.00".to_owned(),
            units: "1".to_owned(),
            service_date: "2026-05-04".to_owned(),
            diagnosis_pointers: vec![1],
            ..Default::default()
        }],
        demographics: Some(patient_demographics()),
        ..Default::default()
    }
}
