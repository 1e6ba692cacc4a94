//! CreateClaims and ScrubClaims through the generated client on SQLite and PostgreSQL: good items
//! written and bad ones failing alone with the single RPC's status, keys shared with the single
//! calls, gap-free history, and the same stored claims whether a batch is written together, one
//! by one, or as single calls.

mod support;

use medbill_domain::{ClaimId, TenantId};
use medbill_proto::claims::v1 as pb;
use medbill_storage::testing::TestEnv;
use medbill_testkit::{Caller, TENANT_A};
use support::{Cov, Suite, assert_status, input};
use tonic::Code;

use pb::create_claim_result::Outcome as Created;
use pb::scrub_claim_result::Outcome as Scrubbed;

const DAY: &str = "2026-11-02";
/// A valid NPI that no test registers.
const UNKNOWN_NPI: &str = "1987654328";

fn create(key: &str, pcn: &str, cov: &Cov) -> pb::CreateClaimRequest {
    pb::CreateClaimRequest {
        idempotency_key: key.to_owned(),
        claim: Some(input(pcn, cov, DAY)),
    }
}

fn scrub(key: &str, claim_id: &str) -> pb::ScrubClaimRequest {
    pb::ScrubClaimRequest {
        idempotency_key: key.to_owned(),
        claim_id: claim_id.to_owned(),
    }
}

fn created(results: &[pb::CreateClaimResult], i: usize) -> pb::Claim {
    match &results[i].outcome {
        Some(Created::Created(r)) => r.claim.clone().expect("claim"),
        other => panic!("item {i} not created: {other:?}"),
    }
}

fn scrubbed(results: &[pb::ScrubClaimResult], i: usize) -> pb::ScrubClaimResponse {
    match &results[i].outcome {
        Some(Scrubbed::Scrubbed(r)) => r.clone(),
        other => panic!("item {i} not scrubbed: {other:?}"),
    }
}

/// Asserts that `error` has `code` and names every one of `words`.
fn failed(
    error: Option<&medbill_proto::common::v1::ItemError>,
    i: usize,
    code: Code,
    words: &[&str],
) {
    let e = error.unwrap_or_else(|| panic!("item {i} did not fail"));
    assert_eq!(Code::from(e.code), code, "item {i}: {e:?}");
    for w in words {
        assert!(e.message.contains(w), "item {i}: {e:?} lacks {w}");
    }
}

fn create_error(
    results: &[pb::CreateClaimResult],
    i: usize,
) -> Option<&medbill_proto::common::v1::ItemError> {
    match &results[i].outcome {
        Some(Created::Error(e)) => Some(e),
        _ => None,
    }
}

fn scrub_error(
    results: &[pb::ScrubClaimResult],
    i: usize,
) -> Option<&medbill_proto::common::v1::ItemError> {
    match &results[i].outcome {
        Some(Scrubbed::Error(e)) => Some(e),
        _ => None,
    }
}

/// A stored claim without what differs between two creations of the same input.
fn normalized(mut c: pb::Claim) -> pb::Claim {
    c.id.clear();
    c.patient_control_number.clear();
    c.created_at = None;
    c.updated_at = None;
    for line in &mut c.lines {
        line.line_control_number.clear();
    }
    c
}

/// Every status change of tenant A, in sequence order.
async fn changes(suite: &Suite) -> anyhow::Result<Vec<medbill_claims::model::StatusChange>> {
    let t = TenantId::parse(TENANT_A)?;
    Ok(suite.store.status_changes_after(&t, 0, 10_000).await?)
}

/// Asserts that the tenant's history sequences are 1..=n without a gap.
async fn assert_gap_free(suite: &Suite) -> anyhow::Result<usize> {
    let all = changes(suite).await?;
    let seqs: Vec<u64> = all.iter().map(|c| c.sequence).collect();
    assert_eq!(
        seqs,
        (1..=all.len() as u64).collect::<Vec<_>>(),
        "gap-free history"
    );
    Ok(all.len())
}

medbill_storage::conformance_tests! {
    namespace = "claims";

    async fn a_create_batch_writes_good_items_and_fails_bad_ones_alone(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let single = a.create_claim(create("k-single", "PCN-S", &cov)).await?.into_inner();

        let mut bad_charge = create("k-bad", "PCN-BAD", &cov);
        bad_charge.claim.as_mut().unwrap().lines[1].charge = "1O0.00".to_owned();
        let mut unknown_npi = create("k-npi", "PCN-NPI", &cov);
        unknown_npi.claim.as_mut().unwrap().rendering_provider_npi = UNKNOWN_NPI.to_owned();
        let mut unknown_coverage = create("k-cov", "PCN-COV", &cov);
        unknown_coverage.claim.as_mut().unwrap().coverage_id = ClaimId::new().to_string();
        let request = pb::CreateClaimsRequest {
            items: vec![
                create("k-single", "PCN-S", &cov),
                create("k-1", "PCN-1", &cov),
                bad_charge,
                unknown_npi,
                create("k-2", "PCN-2", &cov),
                // The single call's key with another request.
                create("k-single", "PCN-X", &cov),
                unknown_coverage,
                create("k-3", "PCN-3", &cov),
            ],
        };
        let before = assert_gap_free(&suite).await?;
        let results = a.create_claims(request.clone()).await?.into_inner().results;
        assert_eq!(results.len(), 8);
        assert_eq!(Some(created(&results, 0)), single.claim, "the single call's key replays its answer");
        failed(create_error(&results, 2), 2, Code::InvalidArgument, &["claim.lines[1].charge"]);
        failed(create_error(&results, 3), 3, Code::FailedPrecondition, &["claim.rendering_provider_npi", UNKNOWN_NPI]);
        failed(create_error(&results, 5), 5, Code::AlreadyExists, &["k-single"]);
        failed(create_error(&results, 6), 6, Code::FailedPrecondition, &["claim.coverage_id"]);
        let good: Vec<pb::Claim> = [1, 4, 7].iter().map(|i| created(&results, *i)).collect();
        for (claim, pcn) in good.iter().zip(["PCN-1", "PCN-2", "PCN-3"]) {
            assert_eq!(claim.patient_control_number, pcn);
            assert_eq!(claim.status, pb::ClaimStatus::Draft as i32);
            // Stored as answered.
            assert_eq!(&suite.get(&mut a, &claim.id).await?, claim);
        }
        // Written together, the same claim as a single call stores.
        let single_claim = suite.get(&mut a, &single.claim.as_ref().unwrap().id).await?;
        assert_eq!(normalized(good[0].clone()), normalized(single_claim.clone()));

        // Three new history rows, numbered on from the last without a gap, in item order.
        let after = assert_gap_free(&suite).await?;
        assert_eq!(after, before + 3);
        let all = changes(&suite).await?;
        let tail: Vec<String> = all[before..].iter().map(|c| c.claim_id.to_string()).collect();
        assert_eq!(tail, good.iter().map(|c| c.id.clone()).collect::<Vec<_>>());
        // ListClaimEvents and WatchClaims show them.
        let events = a
            .list_claim_events(pb::ListClaimEventsRequest { claim_id: good[1].id.clone(), ..Default::default() })
            .await?
            .into_inner()
            .events;
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].status, pb::ClaimStatus::Draft as i32);
        assert_eq!(events[0].sequence, before as u64 + 2);
        let mut stream = a
            .watch_claims(pb::WatchClaimsRequest { after_sequence: before as u64, ..Default::default() })
            .await?
            .into_inner();
        for claim in &good {
            let msg = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message())
                .await??
                .and_then(|m| m.change)
                .ok_or_else(|| anyhow::anyhow!("stream ended"))?;
            assert_eq!(msg.claim_id, claim.id);
        }
        drop(stream);

        // Redelivered: nothing new written, the good items replayed, the bad ones fail again.
        let again = a.create_claims(request).await?.into_inner().results;
        for i in [0, 1, 4, 7] {
            assert_eq!(again[i], results[i], "item {i}");
        }
        for i in [2, 3, 5, 6] {
            assert!(create_error(&again, i).is_some(), "item {i}: {:?}", again[i]);
        }
        assert_eq!(assert_gap_free(&suite).await?, after);
        // The single call replays a batch item's key, and refuses it for another request.
        let replay = a.create_claim(create("k-2", "PCN-2", &cov)).await?.into_inner();
        assert_eq!(replay.claim.as_ref(), Some(&good[1]));
        let err = a.create_claim(create("k-2", "PCN-9", &cov)).await.unwrap_err();
        assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");

        // A claim number taken fails inside the transaction: the batch is written again one by
        // one, that item alone failing, and the others stored exactly as written together.
        let request = pb::CreateClaimsRequest {
            items: vec![create("k-4", "PCN-4", &cov), create("k-dup", "PCN-1", &cov), create("k-5", "PCN-5", &cov)],
        };
        let results = a.create_claims(request).await?.into_inner().results;
        failed(create_error(&results, 1), 1, Code::AlreadyExists, &["PCN-1"]);
        for i in [0, 2] {
            let claim = suite.get(&mut a, &created(&results, i).id).await?;
            assert_eq!(normalized(claim), normalized(good[0].clone()), "item {i}");
        }
        assert_eq!(assert_gap_free(&suite).await?, after + 2);
        // A failed item's key is free.
        let retried = a.create_claims(pb::CreateClaimsRequest { items: vec![create("k-dup", "PCN-6", &cov)] }).await?.into_inner().results;
        assert_eq!(created(&retried, 0).patient_control_number, "PCN-6");

        // The cap and an empty batch name the field.
        let err = a.create_claims(pb::CreateClaimsRequest::default()).await.unwrap_err();
        assert_status(&err, Code::InvalidArgument, &["items"]);
        let too_many = pb::CreateClaimsRequest {
            items: (0..1_001).map(|i| create(&format!("x-{i}"), &format!("X-{i}"), &cov)).collect(),
        };
        let err = a.create_claims(too_many).await.unwrap_err();
        assert_status(&err, Code::InvalidArgument, &["items", "1000"]);
        Ok(())
    }

    async fn a_scrub_batch_moves_good_items_and_fails_bad_ones_alone(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let request = pb::CreateClaimsRequest {
            items: (0..6).map(|i| create(&format!("c-{i}"), &format!("PCN-{i}"), &cov)).collect(),
        };
        let results = a.create_claims(request).await?.into_inner().results;
        let ids: Vec<String> = (0..6).map(|i| created(&results, i).id).collect();
        suite.submit(&ids[5]).await?;
        let single = a.scrub_claim(scrub("s-0", &ids[0])).await?.into_inner();

        let before = assert_gap_free(&suite).await?;
        let request = pb::ScrubClaimsRequest {
            items: vec![
                scrub("s-0", &ids[0]),
                scrub("s-1", &ids[1]),
                scrub("s-5", &ids[5]),
                scrub("s-x", &ClaimId::new().to_string()),
                scrub("s-bad", "not-an-id"),
                scrub("s-2", &ids[2]),
                scrub("s-0", &ids[3]),
            ],
        };
        let results = a.scrub_claims(request.clone()).await?.into_inner().results;
        assert_eq!(results.len(), 7);
        assert_eq!(scrubbed(&results, 0), single, "the single call's key replays its answer");
        failed(scrub_error(&results, 2), 2, Code::FailedPrecondition, &["SUBMITTED"]);
        failed(scrub_error(&results, 3), 3, Code::NotFound, &["claim"]);
        failed(scrub_error(&results, 4), 4, Code::InvalidArgument, &["claim_id"]);
        failed(scrub_error(&results, 6), 6, Code::AlreadyExists, &["s-0"]);
        for i in [1, 5] {
            let r = scrubbed(&results, i);
            // The same outcome as the single call, stored as answered.
            assert_eq!(r.passed, single.passed);
            assert_eq!(r.findings, single.findings);
            let claim = r.claim.clone().expect("claim");
            assert_eq!(claim.status, single.claim.as_ref().unwrap().status);
            assert_eq!(suite.get(&mut a, &claim.id).await?, claim);
            let stored_single = suite.get(&mut a, &ids[0]).await?;
            assert_eq!(normalized(claim), normalized(stored_single));
        }
        let after = assert_gap_free(&suite).await?;
        assert_eq!(after, before + 2);
        let t = TenantId::parse(TENANT_A)?;
        let history = suite.store.status_history(&t, ClaimId::parse(&ids[1])?).await?;
        assert_eq!(history.len(), 2);
        assert_eq!(history[1].source, medbill_claims::StatusChangeSource::Scrub);
        assert_eq!(history[1].from, Some(medbill_claims::ClaimStatus::Draft));
        let events = a
            .list_claim_events(pb::ListClaimEventsRequest { claim_id: ids[2].clone(), ..Default::default() })
            .await?
            .into_inner()
            .events;
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].previous_status, pb::ClaimStatus::Draft as i32);

        // Redelivered: nothing new written.
        let again = a.scrub_claims(request).await?.into_inner().results;
        for i in [0, 1, 5] {
            assert_eq!(again[i], results[i], "item {i}");
        }
        assert_eq!(assert_gap_free(&suite).await?, after);
        let replay = a.scrub_claim(scrub("s-1", &ids[1])).await?.into_inner();
        assert_eq!(replay, scrubbed(&results, 1));

        // A claim named twice is written one by one: scrubbed twice, the second from the first's
        // status; stored as the batch written together stored its claims.
        let request = pb::ScrubClaimsRequest { items: vec![scrub("s-3", &ids[3]), scrub("s-3b", &ids[3]), scrub("s-4", &ids[4])] };
        let results = a.scrub_claims(request).await?.into_inner().results;
        let first = scrubbed(&results, 0).claim.expect("claim");
        let second = scrubbed(&results, 1).claim.expect("claim");
        assert_eq!(first.status, second.status);
        let history = suite.store.status_history(&t, ClaimId::parse(&ids[3])?).await?;
        assert_eq!(history.len(), 3);
        assert_eq!(history[2].from, Some(history[1].to));
        for id in [&ids[3], &ids[4]] {
            let claim = suite.get(&mut a, id).await?;
            assert_eq!(normalized(claim), normalized(suite.get(&mut a, &ids[1]).await?));
        }
        assert_eq!(assert_gap_free(&suite).await?, after + 3);
        Ok(())
    }
}
