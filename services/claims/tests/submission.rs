//! SubmitClaims and GetSubmissionBatch through the generated client, delivering to payer-sim over
//! CORE HTTP, on SQLite and (with `MEDBILL_TEST_PG_URL`) PostgreSQL.

mod support;

use medbill_payer_sim::Fault;
use medbill_proto::claims::v1 as pb;
use medbill_storage::testing::TestEnv;
use medbill_testkit::Caller;
use support::payer::{self, PayerSuite, create, get, professional};
use tonic::Code;

async fn submit(
    c: &mut payer::Client,
    key: &str,
    ids: &[&str],
) -> anyhow::Result<pb::SubmitClaimsResponse> {
    Ok(c.submit_claims(pb::SubmitClaimsRequest {
        idempotency_key: key.to_owned(),
        claim_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        max_claims: 0,
    })
    .await?
    .into_inner())
}

medbill_storage::conformance_tests! {
    namespace = "claims";

    async fn ready_claims_become_an_837_delivered_once_per_key(env: TestEnv) -> anyhow::Result<()> {
        let suite = PayerSuite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "SPX100000001").await?;
        let one = create(&mut a, "c-1", professional("PCN-1", &cov, "pat-1")).await?;
        let two = create(&mut a, "c-2", professional("PCN-2", &cov, "pat-1")).await?;
        let draft = create(&mut a, "c-3", professional("PCN-3", &cov, "pat-1")).await?;
        suite.make_ready(Caller::TenantA, &one.id).await?;
        suite.make_ready(Caller::TenantA, &two.id).await?;

        let answer = submit(&mut a, "s-1", &[]).await?;
        assert_eq!(answer.batches.len(), 1, "{answer:?}");
        let batch = &answer.batches[0];
        assert_eq!(batch.status, pb::SubmissionBatchStatus::Sent as i32, "{batch:?}");
        assert_eq!(batch.claim_ids, vec![one.id.clone(), two.id.clone()]);
        assert_eq!(batch.claim_count, 2);
        assert_eq!(batch.total_charge, "411.10");
        assert_eq!(batch.interchange_control_number, "000000001");
        assert_eq!(batch.route, "SIMPPO");
        assert!(batch.content.is_empty(), "content only when asked");
        assert!(answer.skipped.is_empty(), "DRAFT claims are not candidates: {:?}", answer.skipped);
        for id in [&one.id, &two.id] {
            let claim = get(&mut a, id).await?;
            assert_eq!(claim.status, pb::ClaimStatus::Submitted as i32);
            assert_eq!(claim.submission_batch_id, batch.id);
        }
        assert_eq!(get(&mut a, &draft.id).await?.status, pb::ClaimStatus::Draft as i32);
        assert!(suite.sim.claims().claim_by_patient_control_number("SIMPPO", "SPX100000001", "PCN-1").is_some(), "payer-sim received the claim");

        // The 837 as sent: a valid interchange carrying what the claim holds.
        let stored = a.get_submission_batch(pb::GetSubmissionBatchRequest { id: batch.id.clone(), include_content: true }).await?.into_inner().batch.unwrap();
        let text = String::from_utf8(stored.content.clone())?;
        assert!(text.starts_with("ISA*00*"), "{text}");
        assert!(text.contains("*000000001*1*T*:~"), "ISA13 and test usage: {text}");
        assert!(text.contains("ST*837*0001*005010X222A1~"), "{text}");
        assert!(text.contains("NM1*85*2*GENERAL HOSPITAL BILLING*****XX*1234567893~"), "{text}");
        assert!(text.contains("REF*EI*123456789~"), "{text}");
        assert!(text.contains("NM1*IL*1*TESTPATIENT*AVERY****MI*SPX100000001~"), "{text}");
        assert!(text.contains("CLM*PCN-1*205.55***11:B:1*Y*A*Y*Y~"), "{text}");
        assert!(text.contains("REF*G1*AUTH123~"), "{text}");
        assert!(text.contains("HI*ABK:E119*ABF:I10~"), "{text}");
        let doc = medbill_x12::Document::parse(text.as_bytes());
        assert!(doc.problems.is_empty(), "{:?}", doc.problems);

        // A retry of the key answers the same batch and sends nothing again.
        let received = suite.sim.requests_received();
        let again = submit(&mut a, "s-1", &[]).await?;
        assert_eq!(again.batches.iter().map(|b| b.id.clone()).collect::<Vec<_>>(), vec![batch.id.clone()]);
        assert_eq!(suite.sim.requests_received(), received, "nothing was sent again");

        // Named claims that cannot go are skipped with the reason.
        let unknown = "0192f0c4-0000-7000-8000-000000000001";
        let skipped = submit(&mut a, "s-2", &[&draft.id, &one.id, unknown]).await?;
        assert!(skipped.batches.is_empty());
        let reasons: Vec<_> = skipped.skipped.iter().map(|s| (s.claim_id.as_str(), s.reason.as_str())).collect();
        assert_eq!(reasons, vec![
            (draft.id.as_str(), "claim is DRAFT, not READY"),
            (one.id.as_str(), "claim is SUBMITTED, not READY"),
            (unknown, "claim not found"),
        ]);

        // Another tenant sees neither the batch nor the claims.
        let mut b = suite.client(Caller::TenantB);
        let theirs = b.get_submission_batch(pb::GetSubmissionBatchRequest { id: batch.id.clone(), include_content: true }).await.unwrap_err();
        assert_eq!(theirs.code(), Code::NotFound);
        let bad = a.get_submission_batch(pb::GetSubmissionBatchRequest { id: "nope".into(), include_content: false }).await.unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument);
        Ok(())
    }

    async fn a_failed_delivery_leaves_claims_ready_and_control_numbers_never_repeat(env: TestEnv) -> anyhow::Result<()> {
        let suite = PayerSuite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "SPX100000001").await?;
        let claim = create(&mut a, "c-1", professional("PCN-1", &cov, "pat-1")).await?;
        suite.make_ready(Caller::TenantA, &claim.id).await?;

        suite.sim.faults().set(Fault::Unavailable);
        let failed = submit(&mut a, "s-1", &[]).await?;
        let batch = &failed.batches[0];
        assert_eq!(batch.status, pb::SubmissionBatchStatus::Failed as i32, "{batch:?}");
        assert!(!batch.error_message.is_empty());
        assert_eq!(get(&mut a, &claim.id).await?.status, pb::ClaimStatus::Ready as i32, "back to READY for the next batch");

        suite.sim.faults().clear();
        let sent = submit(&mut a, "s-2", &[]).await?;
        let second = &sent.batches[0];
        assert_eq!(second.status, pb::SubmissionBatchStatus::Sent as i32, "{second:?}");
        assert_eq!(second.interchange_control_number, "000000002", "the failed batch's number is not reused");
        assert_eq!(get(&mut a, &claim.id).await?.status, pb::ClaimStatus::Submitted as i32);

        // A claim the 837 cannot carry is skipped with the reason; the rest still go.
        let mut bare = professional("PCN-2", &cov, "pat-1");
        bare.demographics = None;
        let bare = create(&mut a, "c-2", bare).await?;
        suite.make_ready(Caller::TenantA, &bare.id).await?;
        let answer = submit(&mut a, "s-3", &[]).await?;
        assert!(answer.batches.is_empty());
        assert_eq!(answer.skipped.len(), 1);
        assert!(answer.skipped[0].reason.contains("no patient demographics"), "{:?}", answer.skipped);
        assert_eq!(get(&mut a, &bare.id).await?.status, pb::ClaimStatus::Ready as i32);
        Ok(())
    }
}
