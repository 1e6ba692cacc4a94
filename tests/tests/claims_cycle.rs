//! A claim's life through `medbill serve --target all` (the zero-setup binary's own start, with
//! the in-process payer-sim as the payer), called through the generated clients as an EHR would:
//! providers and coverage, create, scrub, submit, the 999 and 277CA picked up with no client
//! action (ACCEPTED, and REJECTED for a member not covered on the date of service), adjudication,
//! a corrected claim sent and accepted in turn, and WatchClaims seeing every change. SQLite always;
//! PostgreSQL too when `MEDBILL_TEST_PG_URL` is set.

mod common;

use std::time::{Duration, Instant};

use common::claims::{Claims, claim_input, coverage, coverage_with, get, until};
use medbill::serve::Target;
use medbill_proto::claims::v1 as claims;
use medbill_proto::claims::v1::claims_service_client::ClaimsServiceClient;
use medbill_proto::common::v1 as common_pb;
use medbill_proto::eligibility::v1 as eligibility;
use medbill_storage::testing::TestEnv;
use medbill_testkit::fixtures::{billing_provider, register_provider};
use medbill_testkit::{Caller, channel_to};

async fn scrub(c: &mut Claims, key: &str, id: &str) -> anyhow::Result<claims::ScrubClaimResponse> {
    Ok(c.scrub_claim(claims::ScrubClaimRequest {
        idempotency_key: key.into(),
        claim_id: id.into(),
    })
    .await?
    .into_inner())
}

async fn submit(c: &mut Claims, key: &str) -> anyhow::Result<claims::SubmitClaimsResponse> {
    Ok(c.submit_claims(claims::SubmitClaimsRequest {
        idempotency_key: key.into(),
        ..Default::default()
    })
    .await?
    .into_inner())
}

medbill_storage::conformance_tests! {
    async fn a_claim_goes_from_the_ehr_to_the_payer_and_back(env: TestEnv) -> anyhow::Result<()> {
        // payer-sim pays nothing here: these tests make their own 835s (or none).
        let suite = common::start_tuned(&env, Target::All, |c| c.with_value("claims.submission.acknowledgement_poll_secs", 1).with_value("payer_sim.adjudication_lag_secs", 86_400)).await?;
        let url = suite.handle.url();
        let mut c = ClaimsServiceClient::new(channel_to(&url, Caller::TenantA));

        // Every change of the tenant's claims, as a work queue screen would follow them.
        let mut watch = c.clone().watch_claims(claims::WatchClaimsRequest::default()).await?.into_inner();

        register_provider(&mut c, billing_provider()).await?;
        let covered = coverage(&url, "ehr-patient-1", "SPX100000001").await?;
        // The same patient's secondary coverage, for the claim that follows the primary's payment.
        coverage_with(&url, "ehr-patient-1", "SIMHMO", "HMO0000001", eligibility::CoverageOrder::Secondary).await?;
        // payer-sim's SPX100000004 is not covered in 2026: its 277CA rejects the claim.
        let lapsed = coverage(&url, "ehr-patient-4", "SPX100000004").await?;
        let good = c.create_claim(claims::CreateClaimRequest { idempotency_key: "c-1".into(), claim: Some(claim_input("CYCLE-1", &covered, "ehr-patient-1")) }).await?.into_inner().claim.expect("a claim");
        let bad = c.create_claim(claims::CreateClaimRequest { idempotency_key: "c-2".into(), claim: Some(claim_input("CYCLE-2", &lapsed, "ehr-patient-4")) }).await?.into_inner().claim.expect("a claim");

        for (key, id) in [("s-1", &good.id), ("s-2", &bad.id)] {
            let scrubbed = scrub(&mut c, key, id).await?;
            assert!(scrubbed.passed, "{:?}", scrubbed.findings);
        }
        let sent = submit(&mut c, "sub-1").await?;
        assert_eq!(sent.batches.len(), 1);
        assert_eq!(sent.batches[0].status, claims::SubmissionBatchStatus::Sent as i32, "{:?}", sent.batches[0]);

        let accepted = until(&mut c, &good.id, claims::ClaimStatus::Accepted).await?;
        assert!(!accepted.payer_claim_control_number.is_empty(), "REF*1K recorded");
        until(&mut c, &bad.id, claims::ClaimStatus::Rejected).await?;
        let batch = c.get_submission_batch(claims::GetSubmissionBatchRequest { id: sent.batches[0].id.clone(), include_content: false }).await?.into_inner().batch.expect("a batch");
        assert_eq!(batch.status, claims::SubmissionBatchStatus::Accepted as i32);

        // The payer pays (as remittance will post it): PAID.
        let paid = c.apply_adjudication(claims::ApplyAdjudicationRequest {
            idempotency_key: "era-1-clp-1".into(),
            claim_ref: Some(claims::apply_adjudication_request::ClaimRef::ClaimId(good.id.clone())),
            adjudication: Some(claims::Adjudication {
                era_id: "era-1".into(),
                claim_payment_id: "clp-1".into(),
                claim_status_code: "1".into(),
                charge: "205.00".into(),
                paid: "164.00".into(),
                patient_responsibility: "41.00".into(),
                payer_claim_control_number: accepted.payer_claim_control_number.clone(),
                adjustments: vec![common_pb::CasAdjustment {
                    group: common_pb::AdjustmentGroup::Pr.into(),
                    reason: "2".into(),
                    amount: "41.00".into(),
                    ..Default::default()
                }],
                payment_date: "2026-06-01".into(),
                ..Default::default()
            }),
        }).await?.into_inner();
        let paid_claim = paid.claim.expect("a claim");
        assert_eq!(paid_claim.status, claims::ClaimStatus::Paid as i32);
        assert_eq!(paid.patient_responsibility, "41.00");
        // The primary left 41.00 and the patient has a secondary coverage: a secondary claim, scrubbed.
        let secondary = get(&mut c, &paid_claim.secondary_claim_id).await?;
        assert_eq!(secondary.payer_id, "SIMHMO");
        assert_eq!(secondary.primary_claim_id, good.id);
        assert_eq!(secondary.status, claims::ClaimStatus::Ready as i32, "{:?}", secondary.scrub_findings);

        // A corrected claim (frequency 7, REF*F8) goes out and is accepted in turn.
        let corrected = c.correct_claim(claims::CorrectClaimRequest {
            idempotency_key: "fix-1".into(),
            claim_id: good.id.clone(),
            replacement: Some(claims::ClaimInput { patient_control_number: String::new(), ..claim_input("", &covered, "ehr-patient-1") }),
            reason: "wrong units on line 2".into(),
            ..Default::default()
        }).await?.into_inner();
        let replacement = corrected.replacement.expect("a replacement");
        assert_eq!(replacement.frequency_code, "7");
        assert_eq!(replacement.payer_claim_control_number, accepted.payer_claim_control_number);
        assert_eq!(corrected.original.expect("the original").superseded_by_claim_id, replacement.id);
        assert!(scrub(&mut c, "s-3", &replacement.id).await?.passed);
        let resent = submit(&mut c, "sub-2").await?;
        let by_route = |route: &str| resent.batches.iter().find(|b| b.route == route).map(|b| b.interchange_control_number.clone());
        assert_eq!(by_route("SIMPPO").as_deref(), Some("000000002"), "the replacement: the PPO route's second interchange");
        assert_eq!(by_route("SIMHMO").as_deref(), Some("000000001"), "the secondary claim: the HMO route's first");
        until(&mut c, &replacement.id, claims::ClaimStatus::Accepted).await?;

        // Where is the replacement? A 276 to payer-sim answers with a 277.
        let follow_up = c.follow_up_claim(claims::FollowUpClaimRequest { idempotency_key: "where-1".into(), claim_id: replacement.id.clone() })
            .await?
            .into_inner()
            .follow_up
            .expect("a follow-up");
        assert_eq!(follow_up.outcome, claims::FollowUpOutcome::Answered as i32, "{follow_up:?}");
        assert!(!follow_up.statuses.is_empty() && !follow_up.summary.is_empty(), "{follow_up:?}");

        // WatchClaims saw each of the original's changes, in order.
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while seen.len() < 5 && Instant::now() < deadline {
            let Ok(Some(message)) = tokio::time::timeout(Duration::from_secs(5), watch.message()).await? else { break };
            let change = message.change.expect("a change");
            if change.claim_id == good.id {
                seen.push(change.status());
            }
        }
        use claims::ClaimStatus::{Accepted, Draft, Paid, Ready, Submitted};
        assert_eq!(seen, vec![Draft, Ready, Submitted, Accepted, Paid]);

        suite.shutdown().await?;
        Ok(())
    }
}
