//! The payment flow end to end through `medbill serve --target all`, called through the generated
//! clients: claims created, scrubbed and submitted are accepted by payer-sim, adjudicated from its
//! catalog and paid in an 835 that remittance's pickup task retrieves by itself, splits per
//! payment, matches and posts once; the claims end PAID / PARTIALLY_PAID / DENIED and the
//! patient's ledger shows the patient's share. A corrected claim then comes back as a reversal
//! and a correction, and the claims and the ledger end where the corrected adjudication says.
//! SQLite always; PostgreSQL too when `MEDBILL_TEST_PG_URL` is set.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::claims::{Claims, PAYER, claim_input, coverage, until};
use medbill::serve::Target;
use medbill_proto::claims::v1 as claims;
use medbill_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use medbill_proto::collections::v1 as collections;
use medbill_proto::collections::v1::collections_service_client::CollectionsServiceClient;
use medbill_proto::remittance::v1 as remit;
use medbill_proto::remittance::v1::remittance_service_client::RemittanceServiceClient;
use medbill_runtime::client::TracedChannel;
use medbill_storage::testing::TestEnv;
use medbill_testkit::fixtures::{billing_provider, register_provider};
use medbill_testkit::{Caller, TENANT_A, channel_to};

type Remit = RemittanceServiceClient<TracedChannel>;
type Ledger = CollectionsServiceClient<TracedChannel>;

const PATIENT: &str = "ehr-patient-pay";

/// A claim of the sample patient with one line per (code, charge, date of service).
fn claim_with(pcn: &str, coverage_id: &str, lines: &[(&str, &str, &str)]) -> claims::ClaimInput {
    claims::ClaimInput {
        lines: lines
            .iter()
            .map(|(code, charge, date)| claims::ClaimLine {
                procedure_code: (*code).into(),
                charge: (*charge).into(),
                units: "1".into(),
                service_date: (*date).into(),
                diagnosis_pointers: vec![1],
                ..Default::default()
            })
            .collect(),
        ..claim_input(pcn, coverage_id, PATIENT)
    }
}

/// Creates and scrubs `input`; returns the claim.
async fn ready(
    c: &mut Claims,
    key: &str,
    input: claims::ClaimInput,
) -> anyhow::Result<claims::Claim> {
    let claim = c
        .create_claim(claims::CreateClaimRequest {
            idempotency_key: format!("c-{key}"),
            claim: Some(input),
        })
        .await?
        .into_inner()
        .claim
        .expect("a claim");
    let scrubbed = c
        .scrub_claim(claims::ScrubClaimRequest {
            idempotency_key: format!("s-{key}"),
            claim_id: claim.id.clone(),
        })
        .await?
        .into_inner();
    anyhow::ensure!(scrubbed.passed, "{:?}", scrubbed.findings);
    Ok(claim)
}

/// Waits (up to 30 s) until the patient's account balance is `balance`.
async fn balance_until(l: &mut Ledger, balance: &str) -> anyhow::Result<collections::Account> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let accounts = l
            .list_accounts(collections::ListAccountsRequest {
                patient_ref: PATIENT.into(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .accounts;
        if let Some(a) = accounts.iter().find(|a| a.balance == balance) {
            return Ok(a.clone());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the patient's balance is not {balance}: {accounts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (up to 30 s) until `n` ERAs are POSTED; returns them.
async fn posted_eras(r: &mut Remit, n: usize) -> anyhow::Result<Vec<remit::Era>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let eras = r
            .list_eras(remit::ListErasRequest {
                status: remit::EraStatus::Posted.into(),
                ..Default::default()
            })
            .await?
            .into_inner()
            .eras;
        if eras.len() >= n {
            return Ok(eras);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} of {n} ERAs posted",
            eras.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn payments_of(r: &mut Remit, claim_id: &str) -> anyhow::Result<Vec<remit::ClaimPayment>> {
    Ok(r.list_claim_payments(remit::ListClaimPaymentsRequest {
        claim_id: claim_id.into(),
        ..Default::default()
    })
    .await?
    .into_inner()
    .claim_payments)
}

medbill_storage::conformance_tests! {
    async fn payer_sim_pays_and_remittance_posts_without_a_hand_made_835(env: TestEnv) -> anyhow::Result<()> {
        let tenants = BTreeMap::from([(PAYER.to_owned(), TENANT_A.to_owned())]);
        let suite = common::start_tuned(&env, Target::All, |c| {
            c.with_value("claims.submission.acknowledgement_poll_secs", 1)
                .with_value("remittance.era_pickup.poll_secs", 1)
                .with_value("remittance.era_pickup.tenants", tenants)
                .with_value("payer_sim.adjudication_lag_secs", 0)
        })
        .await?;
        let url = suite.handle.url();
        let mut c = ClaimsServiceClient::new(channel_to(&url, Caller::TenantA));
        let mut r = RemittanceServiceClient::new(channel_to(&url, Caller::TenantA));
        let mut l = CollectionsServiceClient::new(channel_to(&url, Caller::TenantA));
        register_provider(&mut c, billing_provider()).await?;
        // SPX100000001 at SIMPPO: PPO-GOLD, office visit (99213) copay 25 on a 100.00 fee;
        // 70450 needs a prior authorization the claims do not carry.
        let covered = coverage(&url, PATIENT, "SPX100000001").await?;
        let paid = ready(&mut c, "paid", claim_with("PAY-PAID", &covered, &[("99213", "130.00", "2026-05-04")])).await?;
        let partial = ready(&mut c, "part", claim_with("PAY-PART", &covered, &[("99213", "130.00", "2026-05-05"), ("70450", "900.00", "2026-05-05")])).await?;
        let denied = ready(&mut c, "deny", claim_with("PAY-DENY", &covered, &[("70450", "900.00", "2026-05-06")])).await?;
        c.submit_claims(claims::SubmitClaimsRequest { idempotency_key: "sub-1".into(), ..Default::default() }).await?;

        // No 835 is ingested by hand: payer-sim pays, remittance retrieves, matches and posts.
        let paid_now = until(&mut c, &paid.id, claims::ClaimStatus::Paid).await?;
        until(&mut c, &partial.id, claims::ClaimStatus::PartiallyPaid).await?;
        until(&mut c, &denied.id, claims::ClaimStatus::Denied).await?;
        let eras = posted_eras(&mut r, 1).await?;
        assert_eq!(eras.len(), 1, "one payment to one payee: one ERA");
        let era = &eras[0];
        assert_eq!(era.payer_id, PAYER);
        assert_eq!(era.payment_amount, "150.00", "75.00 for each office visit");

        let p = payments_of(&mut r, &paid.id).await?;
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].posting_status(), remit::PostingStatus::Posted);
        assert_eq!((p[0].charge.as_str(), p[0].paid.as_str()), ("130.00", "75.00"));
        assert_eq!(p[0].payer_claim_control_number, paid_now.payer_claim_control_number);
        assert_eq!(p[0].lines[0].matched_by(), remit::LineMatch::ControlNumber);
        let part = payments_of(&mut r, &partial.id).await?;
        let denial = &part[0].lines[1];
        assert_eq!(denial.adjustments[0].reason, "197");
        assert_eq!(denial.remarks[0].code, "M62");
        assert!(!denial.remarks[0].description.is_empty(), "RARC text from the code sets");

        // The patient owes the two copays.
        let account = balance_until(&mut l, "50.00").await?;

        // Posted once: the same 835 again is the same ERA and changes nothing.
        let content = r
            .get_era(remit::GetEraRequest { id: era.id.clone(), include_claim_payments: false, include_content: true })
            .await?
            .into_inner()
            .era
            .expect("an ERA")
            .content;
        let again = r
            .ingest_era(remit::IngestEraRequest { idempotency_key: "again-1".into(), content, file_name: "again.835".into() })
            .await?
            .into_inner();
        assert!(again.duplicate);
        assert_eq!(again.eras[0].id, era.id);

        // The office visit was really a 99214: the corrected claim is paid 0 (deductible) and
        // the first payment is reversed.
        let corrected = c
            .correct_claim(claims::CorrectClaimRequest {
                idempotency_key: "fix-1".into(),
                claim_id: paid.id.clone(),
                replacement: Some(claims::ClaimInput {
                    patient_control_number: String::new(),
                    ..claim_with("", &covered, &[("99214", "200.00", "2026-05-04")])
                }),
                reason: "wrong level of visit".into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        let replacement = corrected.replacement.expect("a replacement");
        let scrubbed = c
            .scrub_claim(claims::ScrubClaimRequest { idempotency_key: "s-fix-1".into(), claim_id: replacement.id.clone() })
            .await?
            .into_inner();
        assert!(scrubbed.passed, "{:?}", scrubbed.findings);
        c.submit_claims(claims::SubmitClaimsRequest { idempotency_key: "sub-2".into(), ..Default::default() }).await?;
        until(&mut c, &replacement.id, claims::ClaimStatus::Paid).await?;
        let eras = posted_eras(&mut r, 2).await?;
        let second = eras.iter().find(|e| e.id != era.id).expect("the second ERA");
        assert_eq!(second.payment_amount, "0.00", "the reversal takes back more than the correction pays");

        let reversed = payments_of(&mut r, &paid.id).await?;
        let reversal = reversed.iter().find(|p| p.status_code == "22").expect("the reversal");
        assert_eq!(reversal.posting_status(), remit::PostingStatus::Posted);
        assert_eq!(reversal.reverses_claim_payment_id, p[0].id);
        let correction = payments_of(&mut r, &replacement.id).await?;
        assert_eq!(correction.len(), 1);
        assert_eq!((correction[0].paid.as_str(), correction[0].patient_responsibility.as_str()), ("0.00", "150.00"));

        // The ledger ends where the correction says: 25.00 (PAY-PART's copay) + 150.00.
        let after = balance_until(&mut l, "175.00").await?;
        assert_eq!(after.id, account.id);
        Ok(())
    }
}
