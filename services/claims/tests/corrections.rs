//! CorrectClaim and VoidClaim through the generated client on SQLite and PostgreSQL: before and
//! after submission, the chain readable both ways, and refusals that write nothing.

mod support;

use medbill_domain::{ClaimId, TenantId};
use medbill_proto::claims::v1 as pb;
use medbill_storage::testing::TestEnv;
use medbill_testkit::{Caller, TENANT_A};
use support::{Suite, assert_status, input};
use tonic::Code;

fn correct(
    key: &str,
    claim_id: &str,
    replacement: pb::ClaimInput,
    pccn: &str,
) -> pb::CorrectClaimRequest {
    pb::CorrectClaimRequest {
        idempotency_key: key.to_owned(),
        claim_id: claim_id.to_owned(),
        replacement: Some(replacement),
        payer_claim_control_number: pccn.to_owned(),
        reason: "wrong units".to_owned(),
    }
}

fn void(key: &str, claim_id: &str, pccn: &str) -> pb::VoidClaimRequest {
    pb::VoidClaimRequest {
        idempotency_key: key.to_owned(),
        claim_id: claim_id.to_owned(),
        payer_claim_control_number: pccn.to_owned(),
        reason: "billed in error".to_owned(),
    }
}

async fn claim_count(suite: &Suite) -> anyhow::Result<usize> {
    let t = TenantId::parse(TENANT_A)?;
    Ok(suite
        .store
        .list_claims(&t, &Default::default(), None, 500)
        .await?
        .len())
}

medbill_storage::conformance_tests! {
    namespace = "claims";

    async fn corrects_a_submitted_claim(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let draft = suite.claim(&mut a, "PCN-0", &cov, "2026-03-02").await?;
        let c = suite.claim(&mut a, "PCN-1", &cov, "2026-03-02").await?;

        // Not yet sent: nothing to correct at the payer.
        let err = a.correct_claim(correct("k-0", &draft.id, input("", &cov, "2026-03-02"), "ICN-1")).await.unwrap_err();
        assert_status(&err, Code::FailedPrecondition, &["DRAFT"]);

        suite.submit(&c.id).await?;
        // Submitted but no payer claim control number on record, none given: refused.
        let mut fixed = input("", &cov, "2026-03-02");
        fixed.lines[0].units = "2".to_owned();
        let err = a.correct_claim(correct("k-1", &c.id, fixed.clone(), "")).await.unwrap_err();
        assert_status(&err, Code::FailedPrecondition, &["payer_claim_control_number"]);
        // The replacement is validated as CreateClaim validates, named under replacement.
        let mut bad = fixed.clone();
        bad.lines[0].charge = "x".to_owned();
        let err = a.correct_claim(correct("k-1", &c.id, bad, "ICN-1")).await.unwrap_err();
        assert_status(&err, Code::InvalidArgument, &["replacement.lines[0].charge"]);
        let mut other_payer = fixed.clone();
        other_payer.payer_id = "99999".to_owned();
        let err = a.correct_claim(correct("k-1", &c.id, other_payer, "ICN-1")).await.unwrap_err();
        assert_status(&err, Code::InvalidArgument, &["replacement.payer_id"]);
        assert_eq!(claim_count(&suite).await?, 2, "nothing written by the refusals");

        let r = a.correct_claim(correct("k-1", &c.id, fixed.clone(), "ICN-1")).await?.into_inner();
        let (original, replacement) = (r.original.unwrap(), r.replacement.unwrap());
        assert_eq!(replacement.status, pb::ClaimStatus::Draft as i32);
        assert_eq!(replacement.frequency_code, "7");
        assert_eq!(replacement.payer_claim_control_number, "ICN-1");
        assert_eq!(replacement.patient_control_number, "PCN-1-R1", "derived: CLM01 is unique");
        assert_eq!(replacement.lines[0].units, "2");
        assert_eq!(replacement.original_claim_id, c.id);
        assert_eq!(original.superseded_by_claim_id, replacement.id);
        assert_eq!(original.status, pb::ClaimStatus::Submitted as i32, "the original keeps its status");
        // Readable both ways, as stored.
        assert_eq!(suite.get(&mut a, &c.id).await?, original);
        assert_eq!(suite.get(&mut a, &replacement.id).await?, replacement);
        // The replacement's history says where it came from.
        let events = a
            .list_claim_events(pb::ListClaimEventsRequest { claim_id: replacement.id.clone(), ..Default::default() })
            .await?
            .into_inner()
            .events;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].source, pb::StatusChangeSource::Correction as i32);
        assert_eq!(events[0].source_id, c.id);
        assert!(events[0].reason.contains("wrong units"), "{}", events[0].reason);
        // A retry answers the same; a second correction of the same original is refused.
        let again = a.correct_claim(correct("k-1", &c.id, fixed.clone(), "ICN-1")).await?.into_inner();
        assert_eq!(again.replacement.unwrap().id, replacement.id);
        let err = a.correct_claim(correct("k-2", &c.id, fixed.clone(), "ICN-1")).await.unwrap_err();
        assert_status(&err, Code::FailedPrecondition, &["already corrected", &replacement.id]);
        assert_eq!(claim_count(&suite).await?, 3);

        // Another tenant does not see the claim.
        let mut b = suite.client(Caller::TenantB);
        let err = b.correct_claim(correct("k-3", &c.id, fixed, "ICN-1")).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        Ok(())
    }

    async fn a_correction_uses_the_number_on_record(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let c = suite.claim(&mut a, "PCN-1", &cov, "2026-03-02").await?;
        suite.accept(&c.id).await?;
        // The 835 sets the payer's number (CLP07) on the claim.
        a.apply_adjudication(pb::ApplyAdjudicationRequest {
            idempotency_key: "era".into(),
            claim_ref: Some(pb::apply_adjudication_request::ClaimRef::ClaimId(c.id.clone())),
            adjudication: Some(pb::Adjudication {
                era_id: "era-1".into(),
                claim_payment_id: "cp-1".into(),
                claim_status_code: "4".into(),
                charge: "200.00".into(),
                paid: "0".into(),
                payer_claim_control_number: "ICN-835".into(),
                ..Default::default()
            }),
        })
        .await?;
        let mut fixed = input("PCN-1B", &cov, "2026-03-02");
        fixed.diagnoses = vec!["I10".to_owned()];
        let r = a.correct_claim(correct("k", &c.id, fixed, "")).await?.into_inner();
        let replacement = r.replacement.unwrap();
        assert_eq!(replacement.payer_claim_control_number, "ICN-835");
        assert_eq!(replacement.patient_control_number, "PCN-1B", "a given CLM01 is kept");
        assert_eq!(r.original.unwrap().status, pb::ClaimStatus::Denied as i32);
        Ok(())
    }

    async fn voids_before_and_after_submission(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let draft = suite.claim(&mut a, "PCN-0", &cov, "2026-03-02").await?;
        let sent = suite.claim(&mut a, "PCN-1", &cov, "2026-03-02").await?;
        let no_number = suite.claim(&mut a, "PCN-2", &cov, "2026-03-02").await?;
        suite.accept(&sent.id).await?;
        suite.submit(&no_number.id).await?;

        // Before submission: simply VOID, nothing to send.
        let r = a.void_claim(void("v-0", &draft.id, "")).await?.into_inner();
        assert_eq!(r.claim.as_ref().unwrap().status, pb::ClaimStatus::Void as i32);
        assert_eq!(r.void_claim, None);
        assert_eq!(suite.get(&mut a, &draft.id).await?, r.claim.unwrap());
        // VOID is final.
        let err = a.void_claim(void("v-00", &draft.id, "")).await.unwrap_err();
        assert_status(&err, Code::FailedPrecondition, &["VOID"]);

        // Submitted without a payer number on record and none given: refused, nothing written.
        let err = a.void_claim(void("v-1", &no_number.id, "")).await.unwrap_err();
        assert_status(&err, Code::FailedPrecondition, &["payer_claim_control_number"]);
        assert_eq!(suite.get(&mut a, &no_number.id).await?.status, pb::ClaimStatus::Submitted as i32);
        assert_eq!(claim_count(&suite).await?, 3);

        // After submission: a frequency-8 copy in READY, the original VOID, linked both ways.
        let r = a.void_claim(void("v-2", &sent.id, "ICN-9")).await?.into_inner();
        let (original, void_claim) = (r.claim.unwrap(), r.void_claim.unwrap());
        assert_eq!(original.status, pb::ClaimStatus::Void as i32);
        assert_eq!(original.superseded_by_claim_id, void_claim.id);
        assert_eq!(void_claim.status, pb::ClaimStatus::Ready as i32);
        assert_eq!(void_claim.frequency_code, "8");
        assert_eq!(void_claim.payer_claim_control_number, "ICN-9");
        assert_eq!(void_claim.patient_control_number, "PCN-1-V1");
        assert_eq!(void_claim.original_claim_id, sent.id);
        assert_eq!(void_claim.total_charge, sent.total_charge);
        assert_eq!(void_claim.lines.len(), sent.lines.len());
        assert_eq!(suite.get(&mut a, &sent.id).await?, original);
        assert_eq!(suite.get(&mut a, &void_claim.id).await?, void_claim);
        let t = TenantId::parse(TENANT_A)?;
        let history = suite.store.status_history(&t, ClaimId::parse(&sent.id)?).await?;
        let last = history.last().unwrap();
        assert_eq!(last.source_id, void_claim.id);
        assert!(last.reason.contains("billed in error"), "{}", last.reason);
        Ok(())
    }
}
