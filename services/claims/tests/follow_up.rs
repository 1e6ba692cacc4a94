//! The 276/277 follow-up of unpaid claims against payer-sim, on SQLite and (with
//! `MEDBILL_TEST_PG_URL`) PostgreSQL: the scheduled pass asks about a claim past its payer's
//! days and stores the 277 answer, does not ask again before the next interval, and
//! FollowUpClaim asks now.

mod support;

use std::collections::HashMap;

use medbill_claims::follow_up::{FollowUps, follow_up_once};
use medbill_proto::claims::v1 as pb;
use medbill_storage::testing::TestEnv;
use medbill_testkit::Caller;
use support::payer::{PAYER, PayerSuite, create, get, professional};
use tonic::Code;

const DAY: i64 = 86_400_000_000;

async fn follow_ups_of(
    c: &mut support::payer::Client,
    claim_id: &str,
) -> anyhow::Result<Vec<pb::ClaimFollowUp>> {
    Ok(c.list_claim_follow_ups(pb::ListClaimFollowUpsRequest {
        claim_id: claim_id.to_owned(),
        ..Default::default()
    })
    .await?
    .into_inner()
    .follow_ups)
}

medbill_storage::conformance_tests! {
    namespace = "claims";

    async fn unpaid_claims_get_a_276_past_their_days_and_not_before_the_next_interval(env: TestEnv) -> anyhow::Result<()> {
        let suite = PayerSuite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "SPX100000001").await?;
        let claim = create(&mut a, "c-1", professional("PCN-FU-1", &cov, "pat-1")).await?;
        let draft = create(&mut a, "c-2", professional("PCN-FU-2", &cov, "pat-1")).await?;
        suite.make_ready(Caller::TenantA, &claim.id).await?;
        a.submit_claims(pb::SubmitClaimsRequest { idempotency_key: "s-1".into(), claim_ids: vec![claim.id.clone()], max_claims: 0 }).await?;
        assert_eq!(get(&mut a, &claim.id).await?.status, pb::ClaimStatus::Submitted as i32);

        let follow_ups = FollowUps::new(suite.submitter.clone(), HashMap::from([(PAYER.to_owned(), 30)]));
        let now = medbill_storage::time::now_micros();
        let store = suite.store.as_ref();
        assert_eq!(follow_up_once(store, &follow_ups, now).await?, 0, "just submitted: not due");
        assert_eq!(follow_up_once(store, &follow_ups, now + 29 * DAY).await?, 0, "29 of 30 days: not due");
        assert!(follow_ups_of(&mut a, &claim.id).await?.is_empty());

        assert_eq!(follow_up_once(store, &follow_ups, now + 31 * DAY).await?, 1, "past 30 days: asked");
        let stored = follow_ups_of(&mut a, &claim.id).await?;
        assert_eq!(stored.len(), 1);
        let f = &stored[0];
        assert_eq!(f.trigger, pb::FollowUpTrigger::Scheduled as i32);
        assert_eq!(f.outcome, pb::FollowUpOutcome::Answered as i32, "{f:?}");
        assert_eq!(f.statuses.len(), 1, "{f:?}");
        assert_eq!(f.statuses[0].category, "P1", "payer-sim: accepted, pending");
        assert_eq!(f.statuses[0].status, "20");
        assert!(!f.statuses[0].category_description.is_empty(), "the category in plain words: {f:?}");
        assert!(f.summary.starts_with("P1:20 Pending/In Process"), "{}", f.summary);
        assert!(f.payer_claim_control_number.starts_with("SIM"), "REF*1K: {f:?}");
        assert_eq!(f.error_message, "");
        // The payer's claim number is kept on the claim (it had none: no 277CA was read).
        assert_eq!(get(&mut a, &claim.id).await?.payer_claim_control_number, f.payer_claim_control_number);

        // Not again before the next interval, then again after it.
        assert_eq!(follow_up_once(store, &follow_ups, now + 31 * DAY).await?, 0);
        assert_eq!(follow_up_once(store, &follow_ups, now + 45 * DAY).await?, 0);
        assert_eq!(follow_up_once(store, &follow_ups, now + 62 * DAY).await?, 1);
        assert_eq!(follow_ups_of(&mut a, &claim.id).await?.len(), 2);
        // A payer with a longer interval is not asked yet.
        let slow = FollowUps::new(suite.submitter.clone(), HashMap::from([(PAYER.to_owned(), 90)]));
        assert_eq!(follow_up_once(store, &slow, now + 62 * DAY + 1).await?, 0);

        // The draft never went out: it is never asked about.
        assert!(follow_ups_of(&mut a, &draft.id).await?.is_empty());
        Ok(())
    }

    async fn follow_up_claim_asks_now_once_per_key(env: TestEnv) -> anyhow::Result<()> {
        let suite = PayerSuite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "SPX100000001").await?;
        let claim = create(&mut a, "c-1", professional("PCN-FU-3", &cov, "pat-1")).await?;
        suite.make_ready(Caller::TenantA, &claim.id).await?;
        a.submit_claims(pb::SubmitClaimsRequest { idempotency_key: "s-1".into(), claim_ids: vec![claim.id.clone()], max_claims: 0 }).await?;

        let ask = |key: &str, id: &str| pb::FollowUpClaimRequest { idempotency_key: key.to_owned(), claim_id: id.to_owned() };
        let received = suite.sim.requests_received();
        let first = a.follow_up_claim(ask("f-1", &claim.id)).await?.into_inner().follow_up.unwrap();
        assert_eq!(first.trigger, pb::FollowUpTrigger::Requested as i32);
        assert_eq!(first.outcome, pb::FollowUpOutcome::Answered as i32, "{first:?}");
        assert_eq!(first.statuses[0].category, "P1");
        assert_eq!(suite.sim.requests_received(), received + 1, "one 276 sent");
        assert_eq!(follow_ups_of(&mut a, &claim.id).await?, vec![first.clone()]);

        // A retry answers the first follow-up and asks nothing.
        let again = a.follow_up_claim(ask("f-1", &claim.id)).await?.into_inner().follow_up.unwrap();
        assert_eq!(again, first);
        assert_eq!(suite.sim.requests_received(), received + 1);
        assert_eq!(follow_ups_of(&mut a, &claim.id).await?.len(), 1);

        // The scheduled pass waits a full interval from the asked one.
        let follow_ups = FollowUps::new(suite.submitter.clone(), HashMap::from([(PAYER.to_owned(), 30)]));
        let now = medbill_storage::time::now_micros();
        assert_eq!(follow_up_once(suite.store.as_ref(), &follow_ups, now + 29 * DAY).await?, 0);

        // A claim never sent, another tenant's claim, a malformed id.
        let draft = create(&mut a, "c-2", professional("PCN-FU-4", &cov, "pat-1")).await?;
        let err = a.follow_up_claim(ask("f-2", &draft.id)).await.unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert!(err.message().contains("DRAFT"), "{}", err.message());
        let mut b = suite.client(Caller::TenantB);
        let err = b.follow_up_claim(ask("f-3", &claim.id)).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let err = b.list_claim_follow_ups(pb::ListClaimFollowUpsRequest { claim_id: claim.id.clone(), ..Default::default() }).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let err = a.follow_up_claim(ask("f-4", "nope")).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("claim_id"), "{}", err.message());
        Ok(())
    }
}
