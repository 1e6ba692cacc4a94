//! ApplyAdjudication through the generated client on SQLite and PostgreSQL: each outcome, a
//! reversal and the corrected repost, a redelivered key, unknown claims, illegal moves and bad
//! input, with nothing written by a failed call.

mod support;

use medbill_claims::ClaimStatus;
use medbill_domain::{ClaimId, TenantId};
use medbill_proto::claims::v1 as pb;
use medbill_proto::common::v1::{AdjustmentGroup, CasAdjustment};
use medbill_storage::testing::TestEnv;
use medbill_testkit::{Caller, TENANT_A};
use support::{Suite, assert_status};
use tonic::Code;

fn cas(group: AdjustmentGroup, reason: &str, amount: &str) -> CasAdjustment {
    CasAdjustment {
        group: group.into(),
        reason: reason.to_owned(),
        amount: amount.to_owned(),
        ..Default::default()
    }
}

fn svc(paid: &str, adjustments: Vec<CasAdjustment>) -> pb::LineAdjudication {
    pb::LineAdjudication {
        procedure_code: "99213".to_owned(),
        charge: "100.00".to_owned(),
        paid: paid.to_owned(),
        adjustments,
        ..Default::default()
    }
}

fn adjudication(code: &str, paid: &str, lines: Vec<pb::LineAdjudication>) -> pb::Adjudication {
    pb::Adjudication {
        era_id: "era-1".to_owned(),
        claim_payment_id: "cp-1".to_owned(),
        claim_status_code: code.to_owned(),
        charge: "200.00".to_owned(),
        paid: paid.to_owned(),
        payer_claim_control_number: "ICN-77".to_owned(),
        payment_date: "2026-04-10".to_owned(),
        lines,
        ..Default::default()
    }
}

/// Paid at the fee schedule with a 20.00 copay: 50.00 + 80.00 paid.
fn paid() -> pb::Adjudication {
    use AdjustmentGroup::{Co, Pr};
    adjudication(
        "1",
        "130.00",
        vec![
            svc("50.00", vec![cas(Co, "45", "30.00"), cas(Pr, "3", "20.00")]),
            svc("80.00", vec![cas(Co, "45", "20.00")]),
        ],
    )
}

/// Paid 80.00 on the first line, second line denied (CO-97 bundled).
fn partial() -> pb::Adjudication {
    use AdjustmentGroup::Co;
    adjudication(
        "1",
        "80.00",
        vec![
            svc("80.00", vec![cas(Co, "45", "20.00")]),
            svc("0", vec![cas(Co, "97", "100.00")]),
        ],
    )
}

/// The negation of [`paid`].
fn reversal_of_paid() -> pb::Adjudication {
    use AdjustmentGroup::{Co, Pr};
    let mut a = adjudication(
        "22",
        "-130.00",
        vec![
            svc(
                "-50.00",
                vec![cas(Co, "45", "-30.00"), cas(Pr, "3", "-20.00")],
            ),
            svc("-80.00", vec![cas(Co, "45", "-20.00")]),
        ],
    );
    a.charge = "-200.00".to_owned();
    for l in &mut a.lines {
        l.charge = "-100.00".to_owned();
    }
    a.era_id = "era-2".to_owned();
    a
}

fn by_id(key: &str, claim_id: &str, a: pb::Adjudication) -> pb::ApplyAdjudicationRequest {
    pb::ApplyAdjudicationRequest {
        idempotency_key: key.to_owned(),
        claim_ref: Some(pb::apply_adjudication_request::ClaimRef::ClaimId(
            claim_id.to_owned(),
        )),
        adjudication: Some(a),
    }
}

fn by_pcn(key: &str, pcn: &str, a: pb::Adjudication) -> pb::ApplyAdjudicationRequest {
    pb::ApplyAdjudicationRequest {
        idempotency_key: key.to_owned(),
        claim_ref: Some(
            pb::apply_adjudication_request::ClaimRef::PatientControlNumber(pcn.to_owned()),
        ),
        adjudication: Some(a),
    }
}

async fn stored(suite: &Suite, claim_id: &str) -> anyhow::Result<usize> {
    let t = TenantId::parse(TENANT_A)?;
    Ok(suite
        .store
        .adjudications(&t, ClaimId::parse(claim_id)?)
        .await?
        .len())
}

async fn history_len(suite: &Suite, claim_id: &str) -> anyhow::Result<usize> {
    let t = TenantId::parse(TENANT_A)?;
    Ok(suite
        .store
        .status_history(&t, ClaimId::parse(claim_id)?)
        .await?
        .len())
}

medbill_storage::conformance_tests! {
    namespace = "claims";

    async fn each_outcome_moves_the_claim(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let c1 = suite.claim(&mut a, "PCN-1", &cov, "2026-03-02").await?;
        let c2 = suite.claim(&mut a, "PCN-2", &cov, "2026-03-02").await?;
        let c3 = suite.claim(&mut a, "PCN-3", &cov, "2026-03-02").await?;
        let c4 = suite.claim(&mut a, "PCN-4", &cov, "2026-03-02").await?;
        suite.accept(&c1.id).await?;
        suite.submit(&c2.id).await?;
        suite.accept(&c3.id).await?;
        suite.accept(&c4.id).await?;

        // Paid, found by CLP01.
        let r = a.apply_adjudication(by_pcn("era-1/cp-1", "PCN-1", paid())).await?.into_inner();
        let claim = r.claim.unwrap();
        assert_eq!(claim.id, c1.id);
        assert_eq!(claim.status, pb::ClaimStatus::Paid as i32);
        assert_eq!(claim.payer_claim_control_number, "ICN-77", "CLP07 recorded");
        assert_eq!(r.patient_responsibility, "20.00");
        assert_eq!(r.patient_responsibility_adjustments.len(), 1);
        assert_eq!(r.patient_responsibility_adjustments[0].reason, "3");
        let adj = claim.adjudication.as_ref().unwrap();
        assert_eq!(adj.paid, "130.00");
        assert_eq!(adj.lines.len(), 2);
        assert_eq!(adj.lines[0].adjustments.len(), 2);
        assert!(adj.applied_at.is_some());
        // What GetClaim reads back is what the call answered.
        assert_eq!(suite.get(&mut a, &c1.id).await?, claim);

        // Partly denied, from SUBMITTED (the ERA came before the 277CA).
        let r = a.apply_adjudication(by_id("k-2", &c2.id, partial())).await?.into_inner();
        assert_eq!(r.claim.unwrap().status, pb::ClaimStatus::PartiallyPaid as i32);
        assert_eq!(r.patient_responsibility, "0.00");

        // Denied by CLP02 4.
        let mut denied = adjudication("4", "0", vec![svc("0", vec![cas(AdjustmentGroup::Co, "50", "100.00")])]);
        denied.payer_claim_control_number = String::new();
        let r = a.apply_adjudication(by_id("k-3", &c3.id, denied)).await?.into_inner();
        let claim = r.claim.unwrap();
        assert_eq!(claim.status, pb::ClaimStatus::Denied as i32);
        assert_eq!(claim.payer_claim_control_number, "", "no CLP07, none recorded");

        // Nothing paid, only OA denials, under CLP02 1: denied too.
        let oa = adjudication("1", "0", vec![svc("0", vec![cas(AdjustmentGroup::Oa, "18", "100.00")]), svc("0", vec![cas(AdjustmentGroup::Co, "29", "100.00")])]);
        let r = a.apply_adjudication(by_id("k-4", &c4.id, oa)).await?.into_inner();
        assert_eq!(r.claim.unwrap().status, pb::ClaimStatus::Denied as i32);

        // The history names the source and the reason.
        let events = a
            .list_claim_events(pb::ListClaimEventsRequest { claim_id: c2.id.clone(), ..Default::default() })
            .await?
            .into_inner()
            .events;
        let last = events.last().unwrap();
        assert_eq!(last.source, pb::StatusChangeSource::Adjudication as i32);
        assert_eq!(last.source_id, "era-1");
        assert_eq!(last.reason, "835 CLP02 1: paid 80.00 of 200.00, 100.00 denied");
        assert_eq!(last.actor, "medbill.claims.v1.ClaimsService/ApplyAdjudication");
        Ok(())
    }

    async fn a_reversal_undoes_and_a_repost_replaces(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let c = suite.claim(&mut a, "PCN-1", &cov, "2026-03-02").await?;
        suite.accept(&c.id).await?;

        // Nothing to reverse yet.
        let err = a.apply_adjudication(by_id("rev-0", &c.id, reversal_of_paid())).await.unwrap_err();
        assert_status(&err, Code::FailedPrecondition, &["no adjudication in force"]);

        a.apply_adjudication(by_id("pay", &c.id, paid())).await?;
        // A reversal that does not negate the payment in force is refused, and changes nothing.
        let mut wrong = reversal_of_paid();
        wrong.paid = "-120.00".to_owned();
        let err = a.apply_adjudication(by_id("rev-1", &c.id, wrong)).await.unwrap_err();
        assert_status(&err, Code::FailedPrecondition, &["adjudication.paid", "-130.00"]);
        assert_eq!(stored(&suite, &c.id).await?, 1);
        assert_eq!(suite.get(&mut a, &c.id).await?.status, pb::ClaimStatus::Paid as i32);

        let r = a.apply_adjudication(by_id("rev-1", &c.id, reversal_of_paid())).await?.into_inner();
        let claim = r.claim.unwrap();
        assert_eq!(claim.status, pb::ClaimStatus::Accepted as i32, "back where the payment found it");
        assert_eq!(claim.adjudication, None, "no adjudication in force after a reversal");
        assert_eq!(r.patient_responsibility, "-20.00");
        assert_eq!(suite.get(&mut a, &c.id).await?, claim);

        let r = a.apply_adjudication(by_id("repost", &c.id, partial())).await?.into_inner();
        let claim = r.claim.unwrap();
        assert_eq!(claim.status, pb::ClaimStatus::PartiallyPaid as i32);
        assert_eq!(claim.adjudication.as_ref().unwrap().paid, "80.00");

        // Every adjudication is kept: the payment (reversed by the reversal), the reversal, the repost.
        let t = TenantId::parse(TENANT_A)?;
        let all = suite.store.adjudications(&t, ClaimId::parse(&c.id)?).await?;
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].reversed_by, Some(all[1].id));
        assert_eq!(all[1].reverses, Some(all[0].id));
        assert_eq!(all[1].status_after, ClaimStatus::Accepted);
        assert_eq!(all[2].reversed_by, None);

        // A second reversal of the repost goes back to ACCEPTED again; reversing again has nothing.
        let events = suite.store.status_history(&t, ClaimId::parse(&c.id)?).await?;
        let statuses: Vec<_> = events.iter().map(|e| e.to).collect();
        assert_eq!(
            statuses,
            vec![
                ClaimStatus::Draft,
                ClaimStatus::Ready,
                ClaimStatus::Submitted,
                ClaimStatus::Accepted,
                ClaimStatus::Paid,
                ClaimStatus::Accepted,
                ClaimStatus::PartiallyPaid,
            ]
        );
        Ok(())
    }

    async fn a_redelivered_key_applies_once(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let c = suite.claim(&mut a, "PCN-1", &cov, "2026-03-02").await?;
        suite.accept(&c.id).await?;
        let first = a.apply_adjudication(by_id("era-1/cp-1", &c.id, paid())).await?.into_inner();
        let again = a.apply_adjudication(by_id("era-1/cp-1", &c.id, paid())).await?.into_inner();
        assert_eq!(first, again, "a redelivery answers the first result");
        assert_eq!(stored(&suite, &c.id).await?, 1);
        assert_eq!(history_len(&suite, &c.id).await?, 5);
        // The same key for another payment is refused.
        let err = a.apply_adjudication(by_id("era-1/cp-1", &c.id, partial())).await.unwrap_err();
        assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
        assert_eq!(stored(&suite, &c.id).await?, 1);
        Ok(())
    }

    async fn unknown_claims_are_not_found(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let mut b = suite.client(Caller::TenantB);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let c = suite.claim(&mut a, "PCN-1", &cov, "2026-03-02").await?;
        suite.accept(&c.id).await?;
        let err = b.apply_adjudication(by_id("k", &c.id, paid())).await.unwrap_err();
        assert_status(&err, Code::NotFound, &[&c.id]);
        let err = b.apply_adjudication(by_pcn("k", "PCN-1", paid())).await.unwrap_err();
        assert_status(&err, Code::NotFound, &["PCN-1"]);
        let err = a.apply_adjudication(by_id("k", &ClaimId::new().to_string(), paid())).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound);
        let err = a.apply_adjudication(pb::ApplyAdjudicationRequest {
            idempotency_key: "k".into(),
            claim_ref: None,
            adjudication: Some(paid()),
        }).await.unwrap_err();
        assert_status(&err, Code::InvalidArgument, &["claim_ref"]);
        assert_eq!(stored(&suite, &c.id).await?, 0);
        Ok(())
    }

    async fn illegal_moves_and_bad_input_write_nothing(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let c = suite.claim(&mut a, "PCN-1", &cov, "2026-03-02").await?;

        // A DRAFT claim was never sent: no adjudication may land on it.
        let err = a.apply_adjudication(by_id("k-1", &c.id, paid())).await.unwrap_err();
        assert_status(&err, Code::FailedPrecondition, &["DRAFT", "PAID"]);
        assert_eq!(stored(&suite, &c.id).await?, 0);
        assert_eq!(history_len(&suite, &c.id).await?, 1);
        let got = suite.get(&mut a, &c.id).await?;
        assert_eq!((got.status, got.payer_claim_control_number.as_str()), (pb::ClaimStatus::Draft as i32, ""));

        // Bad input names the field.
        let mut bad = paid();
        bad.lines[1].paid = "8O.00".to_owned();
        let err = a.apply_adjudication(by_id("k-2", &c.id, bad)).await.unwrap_err();
        assert_status(&err, Code::InvalidArgument, &["adjudication.lines[1].paid"]);
        let mut bad = paid();
        bad.claim_status_code = "5".to_owned();
        let err = a.apply_adjudication(by_id("k-2", &c.id, bad)).await.unwrap_err();
        assert_status(&err, Code::InvalidArgument, &["adjudication.claim_status_code"]);
        let mut bad = paid();
        bad.claim_status_code = "25".to_owned();
        let err = a.apply_adjudication(by_id("k-2", &c.id, bad)).await.unwrap_err();
        assert_status(&err, Code::InvalidArgument, &["predetermination"]);
        let mut bad = paid();
        bad.adjustments = vec![cas(AdjustmentGroup::Unspecified, "45", "1.00")];
        let err = a.apply_adjudication(by_id("k-2", &c.id, bad)).await.unwrap_err();
        assert_status(&err, Code::InvalidArgument, &["adjudication.adjustments[0].group"]);
        let mut bad = paid();
        bad.paid = "-1.00".to_owned();
        let err = a.apply_adjudication(by_id("k-2", &c.id, bad)).await.unwrap_err();
        assert_status(&err, Code::InvalidArgument, &["adjudication.paid"]);

        // A failed call leaves its key free: once the claim is submitted, the same key applies.
        suite.submit(&c.id).await?;
        let r = a.apply_adjudication(by_id("k-1", &c.id, paid())).await?.into_inner();
        assert_eq!(r.claim.unwrap().status, pb::ClaimStatus::Paid as i32);
        Ok(())
    }

    async fn a_batch_applies_each_item_once_and_a_bad_item_alone(env: TestEnv) -> anyhow::Result<()> {
        use pb::apply_adjudication_result::Outcome;
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let mut claims = Vec::new();
        for pcn in ["PCN-1", "PCN-2", "PCN-3", "PCN-4"] {
            let c = suite.claim(&mut a, pcn, &cov, "2026-03-02").await?;
            suite.accept(&c.id).await?;
            claims.push(c.id);
        }
        let single = a.apply_adjudication(by_id("single", &claims[0], paid())).await?.into_inner();
        let mut bad = paid();
        bad.lines[1].paid = "8O.00".to_owned();
        let items = vec![
            by_id("single", &claims[0], paid()),
            by_pcn("b-2", "PCN-2", partial()),
            by_id("b-3", &ClaimId::new().to_string(), paid()),
            by_id("b-4", &claims[2], bad),
            by_id("b-5", &claims[3], paid()),
            // Nothing in force to reverse: fails inside the transaction, alone.
            by_id("b-6", &claims[2], reversal_of_paid()),
            // The same claim again: reverses what b-5 just applied.
            by_id("b-7", &claims[3], reversal_of_paid()),
        ];
        let request = pb::ApplyAdjudicationsRequest { items };
        let results = a.apply_adjudications(request.clone()).await?.into_inner().results;
        assert_eq!(results.len(), 7);
        let applied = |i: usize| match &results[i].outcome {
            Some(Outcome::Applied(r)) => r.clone(),
            other => panic!("item {i} not applied: {other:?}"),
        };
        let failed = |i: usize, code: Code, words: &[&str]| match &results[i].outcome {
            Some(Outcome::Error(e)) => {
                assert_eq!(Code::from(e.code), code, "item {i}: {e:?}");
                for w in words {
                    assert!(e.message.contains(w), "item {i}: {e:?} lacks {w}");
                }
            }
            other => panic!("item {i} did not fail: {other:?}"),
        };
        assert_eq!(applied(0), single, "the single call's key replays its answer");
        assert_eq!(applied(1).claim.unwrap().status, pb::ClaimStatus::PartiallyPaid as i32);
        failed(2, Code::NotFound, &["claim"]);
        failed(3, Code::InvalidArgument, &["adjudication.lines[1].paid"]);
        assert_eq!(applied(4).claim.unwrap().status, pb::ClaimStatus::Paid as i32);
        failed(5, Code::FailedPrecondition, &["no adjudication in force"]);
        let reversed = applied(6).claim.unwrap();
        assert_eq!(reversed.status, pb::ClaimStatus::Accepted as i32);
        assert_eq!(reversed.adjudication, None);

        // Stored once each; the failed items left nothing behind.
        assert_eq!(stored(&suite, &claims[0]).await?, 1);
        assert_eq!(stored(&suite, &claims[1]).await?, 1);
        assert_eq!(stored(&suite, &claims[2]).await?, 0);
        assert_eq!(history_len(&suite, &claims[2]).await?, 4);
        assert_eq!(stored(&suite, &claims[3]).await?, 2);
        // Every transition is in the history WatchClaims streams.
        let t = TenantId::parse(TENANT_A)?;
        let events = suite.store.status_history(&t, ClaimId::parse(&claims[3])?).await?;
        let tail: Vec<_> = events.iter().rev().take(2).map(|e| e.to).collect();
        assert_eq!(tail, vec![ClaimStatus::Accepted, ClaimStatus::Paid]);
        assert_eq!(suite.get(&mut a, &claims[3]).await?, reversed);

        // Items share the single call's keys: either call replays the other.
        let again = a.apply_adjudication(by_pcn("b-2", "PCN-2", partial())).await?.into_inner();
        assert_eq!(again, applied(1));
        let err = a.apply_adjudication(by_pcn("b-2", "PCN-2", paid())).await.unwrap_err();
        assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
        // Redelivering the batch applies nothing new, and fails the failed items again.
        let redelivered = a.apply_adjudications(request).await?.into_inner().results;
        for i in [0, 1, 4, 6] {
            assert_eq!(redelivered[i], results[i], "item {i}");
        }
        assert!(matches!(redelivered[5].outcome, Some(Outcome::Error(_))));
        assert_eq!(stored(&suite, &claims[3]).await?, 2);
        assert_eq!(history_len(&suite, &claims[1]).await?, 5);

        // A key reused for another request inside a batch is refused for that item only.
        let mixed = pb::ApplyAdjudicationsRequest {
            items: vec![by_pcn("b-2", "PCN-2", paid()), by_id("b-6", &claims[2], paid())],
        };
        let r = a.apply_adjudications(mixed).await?.into_inner().results;
        assert!(matches!(&r[0].outcome, Some(Outcome::Error(e)) if Code::from(e.code) == Code::AlreadyExists), "{r:?}");
        assert!(matches!(&r[1].outcome, Some(Outcome::Applied(_))), "a failed item's key is free: {r:?}");

        // The cap and an empty batch name the field.
        let err = a.apply_adjudications(pb::ApplyAdjudicationsRequest::default()).await.unwrap_err();
        assert_status(&err, Code::InvalidArgument, &["items"]);
        let too_many = pb::ApplyAdjudicationsRequest {
            items: (0..1_001).map(|i| by_id(&format!("x-{i}"), &claims[0], paid())).collect(),
        };
        let err = a.apply_adjudications(too_many).await.unwrap_err();
        assert_status(&err, Code::InvalidArgument, &["items", "1000"]);
        Ok(())
    }
}
