//! Records a test needs on file before the call it is about: the billing provider every sample
//! claim names.

use medbill_proto::claims::v1 as claims;
use medbill_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use medbill_proto::common::v1::Address;
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
