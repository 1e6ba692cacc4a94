//! WatchClaims and ListClaimEvents through the generated client on SQLite and PostgreSQL: replay
//! then live without a gap or a duplicate (also while changes are committed concurrently and
//! across a reconnect), filters, the clean end at shutdown, and the paged history.

mod support;

use std::time::Duration;

use medbill_proto::claims::v1 as pb;
use medbill_storage::testing::TestEnv;
use medbill_testkit::Caller;
use support::{Client, Suite, assert_status};
use tonic::Code;

type Stream = tonic::Streaming<pb::WatchClaimsResponse>;

async fn watch(c: &mut Client, req: pb::WatchClaimsRequest) -> anyhow::Result<Stream> {
    Ok(c.watch_claims(req).await?.into_inner())
}

/// Reads the next change, failing after a few seconds.
async fn next(s: &mut Stream) -> anyhow::Result<pb::ClaimStatusChange> {
    let msg = tokio::time::timeout(Duration::from_secs(10), s.message())
        .await
        .map_err(|_| anyhow::anyhow!("no change within 10 s"))??
        .ok_or_else(|| anyhow::anyhow!("the stream ended"))?;
    msg.change
        .ok_or_else(|| anyhow::anyhow!("message without change"))
}

/// Reads `n` changes and returns their sequences.
async fn sequences(s: &mut Stream, n: usize) -> anyhow::Result<Vec<u64>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next(s).await?.sequence);
    }
    Ok(out)
}

medbill_storage::conformance_tests! {
    namespace = "claims";

    async fn replays_then_follows_live_without_gaps(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        for i in 1..=3 {
            suite.claim(&mut a, &format!("PCN-{i}"), &cov, "2026-03-02").await?;
        }
        // Replay from after 1: 2 and 3 are stored, the rest arrive while we read.
        let mut s = watch(&mut a, pb::WatchClaimsRequest { after_sequence: 1, ..Default::default() }).await?;
        let writer = {
            let mut w = suite.client(Caller::TenantA);
            let cov = support::Cov { id: cov.id.clone(), patient_ref: cov.patient_ref.clone(), payer_id: cov.payer_id.clone() };
            tokio::spawn(async move {
                for i in 4..=23 {
                    let req = pb::CreateClaimRequest {
                        idempotency_key: format!("create-{i}"),
                        claim: Some(support::input(&format!("PCN-{i}"), &cov, "2026-03-02")),
                    };
                    w.create_claim(req).await?;
                }
                anyhow::Ok(())
            })
        };
        let got = sequences(&mut s, 22).await?;
        assert_eq!(got, (2..=23).collect::<Vec<u64>>(), "every change once, in order");
        writer.await??;

        // Reconnect after the last sequence seen: nothing missed, nothing repeated.
        drop(s);
        let c = suite.claim(&mut a, "PCN-24", &cov, "2026-03-02").await?;
        let mut s = watch(&mut a, pb::WatchClaimsRequest { after_sequence: 23, ..Default::default() }).await?;
        let change = next(&mut s).await?;
        assert_eq!((change.sequence, change.claim_id.as_str()), (24, c.id.as_str()));
        assert_eq!(change.previous_status, pb::ClaimStatus::Unspecified as i32);
        assert_eq!(change.status, pb::ClaimStatus::Draft as i32);
        assert_eq!(change.actor, "medbill.claims.v1.ClaimsService/CreateClaim");
        suite.submit(&c.id).await?;
        assert_eq!(sequences(&mut s, 2).await?, vec![25, 26], "changes by another writer arrive too");

        // Live only (0): starts after the last committed change.
        let mut live = watch(&mut a, pb::WatchClaimsRequest::default()).await?;
        suite.claim(&mut a, "PCN-25", &cov, "2026-03-02").await?;
        assert_eq!(next(&mut live).await?.sequence, 27);

        // Another tenant sees none of tenant A's changes.
        let mut b = suite.client(Caller::TenantB);
        let mut other = watch(&mut b, pb::WatchClaimsRequest { after_sequence: 0, ..Default::default() }).await?;
        let covb = suite.coverage(Caller::TenantB, "pat-9", "60054").await?;
        let cb = suite.claim(&mut b, "PCN-B1", &covb, "2026-03-02").await?;
        let first = next(&mut other).await?;
        assert_eq!((first.sequence, first.claim_id.as_str()), (1, cb.id.as_str()));
        Ok(())
    }

    async fn concurrent_writers_never_open_a_gap(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        suite.claim(&mut a, "PCN-0", &cov, "2026-03-02").await?;
        let mut s = watch(&mut a, pb::WatchClaimsRequest { after_sequence: 1, ..Default::default() }).await?;
        // Four writers at once: on PostgreSQL their transactions overlap and take sequences as
        // they go; the watcher must still see 2..=41 exactly once, in order.
        let mut writers = Vec::new();
        for w in 0..4 {
            let mut client = suite.client(Caller::TenantA);
            let cov = support::Cov { id: cov.id.clone(), patient_ref: cov.patient_ref.clone(), payer_id: cov.payer_id.clone() };
            writers.push(tokio::spawn(async move {
                for i in 0..10 {
                    let req = pb::CreateClaimRequest {
                        idempotency_key: format!("w{w}-{i}"),
                        claim: Some(support::input(&format!("PCN-{w}-{i}"), &cov, "2026-03-02")),
                    };
                    client.create_claim(req).await?;
                }
                anyhow::Ok(())
            }));
        }
        let got = sequences(&mut s, 40).await?;
        assert_eq!(got, (2..=41).collect::<Vec<u64>>());
        for w in writers {
            w.await??;
        }
        Ok(())
    }

    async fn filters_by_claim_status_and_payer(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let aetna = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let other = suite.coverage(Caller::TenantA, "pat-2", "87726").await?;
        let c1 = suite.claim(&mut a, "PCN-1", &aetna, "2026-03-02").await?;
        let c2 = suite.claim(&mut a, "PCN-2", &other, "2026-03-02").await?;
        let c3 = suite.claim(&mut a, "PCN-3", &aetna, "2026-03-02").await?;
        suite.submit(&c1.id).await?;
        suite.submit(&c2.id).await?;
        suite.accept(&c3.id).await?;

        let mut by_status = watch(&mut a, pb::WatchClaimsRequest {
            after_sequence: 1,
            statuses: vec![pb::ClaimStatus::Submitted as i32],
            ..Default::default()
        }).await?;
        let got: Vec<String> = vec![next(&mut by_status).await?.claim_id, next(&mut by_status).await?.claim_id, next(&mut by_status).await?.claim_id];
        assert_eq!(got, vec![c1.id.clone(), c2.id.clone(), c3.id.clone()]);

        let mut by_payer = watch(&mut a, pb::WatchClaimsRequest {
            after_sequence: 1,
            payer_id: "87726".into(),
            ..Default::default()
        }).await?;
        let seen = [next(&mut by_payer).await?, next(&mut by_payer).await?, next(&mut by_payer).await?];
        assert!(seen.iter().all(|c| c.claim_id == c2.id), "{seen:?}");

        let mut by_claim = watch(&mut a, pb::WatchClaimsRequest {
            after_sequence: 1,
            claim_ids: vec![c3.id.clone()],
            statuses: vec![pb::ClaimStatus::Accepted as i32],
            ..Default::default()
        }).await?;
        let change = next(&mut by_claim).await?;
        assert_eq!((change.claim_id.as_str(), change.previous_status), (c3.id.as_str(), pb::ClaimStatus::Submitted as i32));
        // Later changes of other claims do not come through this stream; a matching one does.
        suite.walk(&c1.id, &[medbill_claims::ClaimStatus::Accepted]).await?;
        suite.claim(&mut a, "PCN-4", &aetna, "2026-03-02").await?;
        assert!(tokio::time::timeout(Duration::from_millis(600), by_claim.message()).await.is_err(), "nothing else matches");

        let err = watch(&mut a, pb::WatchClaimsRequest { claim_ids: vec!["nope".into()], ..Default::default() }).await.unwrap_err();
        assert_status(&err.downcast_ref::<tonic::Status>().unwrap().clone(), Code::InvalidArgument, &["claim_ids[0]"]);
        Ok(())
    }

    async fn streams_end_cleanly_at_shutdown(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        suite.claim(&mut a, "PCN-1", &cov, "2026-03-02").await?;
        let mut s = watch(&mut a, pb::WatchClaimsRequest { after_sequence: 0, ..Default::default() }).await?;
        let mut replaying = watch(&mut a, pb::WatchClaimsRequest { after_sequence: 1, ..Default::default() }).await?;
        suite.claim(&mut a, "PCN-2", &cov, "2026-03-02").await?;
        assert_eq!(next(&mut replaying).await?.sequence, 2);
        suite.stopping.trigger();
        let end = tokio::time::timeout(Duration::from_secs(5), s.message()).await?;
        // The change may or may not have been sent before the signal; then the stream ends with OK.
        let end = match end? {
            Some(_) => tokio::time::timeout(Duration::from_secs(5), s.message()).await??,
            None => None,
        };
        assert!(end.is_none(), "the stream ends with status OK");
        assert!(tokio::time::timeout(Duration::from_secs(5), replaying.message()).await??.is_none());
        // The server then drains at once: no call is left open.
        tokio::time::timeout(Duration::from_secs(5), suite.claims.shutdown()).await?;
        Ok(())
    }

    async fn lists_a_claims_events_in_pages(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let other = suite.claim(&mut a, "PCN-0", &cov, "2026-03-02").await?;
        let c = suite.claim(&mut a, "PCN-1", &cov, "2026-03-02").await?;
        suite.accept(&c.id).await?;
        suite.submit(&other.id).await?;

        let page = a.list_claim_events(pb::ListClaimEventsRequest { claim_id: c.id.clone(), page_size: 3, ..Default::default() }).await?.into_inner();
        assert_eq!(page.events.len(), 3);
        assert!(!page.next_page_token.is_empty());
        let rest = a.list_claim_events(pb::ListClaimEventsRequest { claim_id: c.id.clone(), page_size: 3, page_token: page.next_page_token.clone() }).await?.into_inner();
        assert_eq!(rest.events.len(), 1);
        assert!(rest.next_page_token.is_empty());
        let all: Vec<_> = page.events.iter().chain(&rest.events).collect();
        let statuses: Vec<i32> = all.iter().map(|e| e.status).collect();
        use pb::ClaimStatus as S;
        assert_eq!(statuses, vec![S::Draft as i32, S::Ready as i32, S::Submitted as i32, S::Accepted as i32]);
        let previous: Vec<i32> = all.iter().map(|e| e.previous_status).collect();
        assert_eq!(previous, vec![S::Unspecified as i32, S::Draft as i32, S::Ready as i32, S::Submitted as i32]);
        // The tenant's sequence interleaves both claims; this claim's entries keep their numbers.
        let seqs: Vec<u64> = all.iter().map(|e| e.sequence).collect();
        assert_eq!(seqs, vec![2, 3, 4, 5]);
        assert_eq!(all[1].source, pb::StatusChangeSource::Scrub as i32);
        assert_eq!(all[1].actor, "medbill.claims.v1.ClaimsService/ScrubClaim");
        assert_eq!(all[2].actor, "medbill.claims.v1.ClaimsService/SubmitClaims");
        assert!(all.iter().all(|e| e.occurred_at.is_some() && e.patient_control_number == "PCN-1"));

        // A page token of another claim's query is refused.
        let err = a.list_claim_events(pb::ListClaimEventsRequest { claim_id: other.id.clone(), page_size: 3, page_token: page.next_page_token }).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        let mut b = suite.client(Caller::TenantB);
        let err = b.list_claim_events(pb::ListClaimEventsRequest { claim_id: c.id.clone(), ..Default::default() }).await.unwrap_err();
        assert_status(&err, Code::NotFound, &[&c.id]);
        let err = a.list_claim_events(pb::ListClaimEventsRequest { claim_id: "x".into(), ..Default::default() }).await.unwrap_err();
        assert_status(&err, Code::InvalidArgument, &["claim_id"]);
        Ok(())
    }
}
