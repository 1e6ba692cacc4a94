//! Claims steps the end-to-end tests share: coverages with payer-sim's payers, a sample
//! professional claim, and reading or waiting for a claim.

use std::time::{Duration, Instant};

use medbill_proto::claims::v1 as claims;
use medbill_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use medbill_proto::eligibility::v1 as eligibility;
use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use medbill_runtime::client::TracedChannel;
use medbill_testkit::fixtures::{billing_provider, patient_demographics};
use medbill_testkit::{Caller, channel_to};

/// The claims client.
pub type Claims = ClaimsServiceClient<TracedChannel>;

/// payer-sim's PPO payer, the sample claims' payer.
pub const PAYER: &str = "SIMPPO";

/// Creates tenant A's PRIMARY coverage with [`PAYER`] for `member_id`; returns its id.
pub async fn coverage(url: &str, patient_ref: &str, member_id: &str) -> anyhow::Result<String> {
    coverage_with(
        url,
        patient_ref,
        PAYER,
        member_id,
        eligibility::CoverageOrder::Primary,
    )
    .await
}

/// Creates tenant A's coverage with `payer_id` for `member_id` in `order`; returns its id.
pub async fn coverage_with(
    url: &str,
    patient_ref: &str,
    payer_id: &str,
    member_id: &str,
    order: eligibility::CoverageOrder,
) -> anyhow::Result<String> {
    let mut elig = EligibilityServiceClient::new(channel_to(url, Caller::TenantA));
    Ok(elig
        .create_coverage(eligibility::CreateCoverageRequest {
            idempotency_key: format!("cov-{member_id}"),
            patient_ref: patient_ref.into(),
            payer_id: payer_id.into(),
            payer_name: format!("PAYER {payer_id}"),
            coverage_order: order.into(),
            member_id: member_id.into(),
            subscriber_first_name: "AVERY".into(),
            subscriber_last_name: "TESTPATIENT".into(),
            subscriber_birth_date: "1985-03-14".into(),
            effective_date: "2026-01-01".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .coverage
        .expect("a coverage")
        .id)
}

/// A professional claim to [`PAYER`]: G0439 180.00 and G0444 25.00 on 2026-05-04, the sample
/// billing provider and patient.
pub fn claim_input(pcn: &str, coverage_id: &str, patient_ref: &str) -> claims::ClaimInput {
    let line = |code: &str, charge: &str, pointers: Vec<u32>| claims::ClaimLine {
        procedure_code: code.into(),
        charge: charge.into(),
        units: "1".into(),
        service_date: "2026-05-04".into(),
        diagnosis_pointers: pointers,
        ..Default::default()
    };
    claims::ClaimInput {
        patient_control_number: pcn.into(),
        claim_type: claims::ClaimType::Professional.into(),
        coverage_id: coverage_id.into(),
        payer_id: PAYER.into(),
        patient_ref: patient_ref.into(),
        billing_provider_npi: billing_provider().npi,
        place_of_service: "11".into(),
        diagnoses: vec!["E119".into(), "I10".into()],
        lines: vec![
            line("G0439", "180.00", vec![1, 2]),
            line("G0444", "25.00", vec![2]),
        ],
        demographics: Some(patient_demographics()),
        ..Default::default()
    }
}

/// Reads a claim.
pub async fn get(c: &mut Claims, id: &str) -> anyhow::Result<claims::Claim> {
    Ok(c.get_claim(claims::GetClaimRequest { id: id.into() })
        .await?
        .into_inner()
        .claim
        .expect("a claim"))
}

/// Waits (up to 30 s) until the claim is in `status`: background tasks move it.
pub async fn until(
    c: &mut Claims,
    id: &str,
    status: claims::ClaimStatus,
) -> anyhow::Result<claims::Claim> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let current = get(c, id).await?;
        if current.status == status as i32 {
            return Ok(current);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "claim {} stayed {:?}, expected {status:?}",
            current.patient_control_number,
            current.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
