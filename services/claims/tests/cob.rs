//! Coordination of benefits through the generated client, with payer-sim as both payers, on
//! SQLite and (with `MEDBILL_TEST_PG_URL`) PostgreSQL: a primary adjudication with a balance and a
//! secondary coverage makes a secondary claim (READY, linked both ways, its 837 carrying the
//! primary's payment); a denial or a missing secondary coverage makes none and says why.

mod support;

use medbill_claims::ClaimStatus;
use medbill_claims::cob::notes;
use medbill_proto::claims::v1 as pb;
use medbill_proto::common::v1 as common;
use medbill_proto::eligibility::v1 as elig;
use medbill_storage::testing::TestEnv;
use medbill_testkit::Caller;
use support::payer::{PayerSuite, SECOND_PAYER, create, get, professional};

fn cas(group: common::AdjustmentGroup, reason: &str, amount: &str) -> common::CasAdjustment {
    common::CasAdjustment {
        group: group.into(),
        reason: reason.to_owned(),
        amount: amount.to_owned(),
        ..Default::default()
    }
}

/// The primary's payment of the sample claim (205.55): 120.00 paid, 45.55 contractual, 40.00
/// left to the patient (line PR 20.00 and 10.00, claim-level PR-3 10.00).
fn primary_payment(claim: &pb::Claim, status_code: &str) -> pb::Adjudication {
    use common::AdjustmentGroup::{Co, Pr};
    let line =
        |i: usize, paid: &str, adjustments: Vec<common::CasAdjustment>| pb::LineAdjudication {
            line_control_number: claim.lines[i].line_control_number.clone(),
            procedure_code: claim.lines[i].procedure_code.clone(),
            charge: claim.lines[i].charge.clone(),
            paid: paid.to_owned(),
            units: "1".to_owned(),
            adjustments,
            ..Default::default()
        };
    pb::Adjudication {
        era_id: "era-cob-1".to_owned(),
        claim_payment_id: "cp-1".to_owned(),
        claim_status_code: status_code.to_owned(),
        charge: "205.55".to_owned(),
        paid: "120.00".to_owned(),
        patient_responsibility: "40.00".to_owned(),
        payer_claim_control_number: "ICN-PRIMARY-1".to_owned(),
        adjustments: vec![cas(Pr, "3", "10.00")],
        lines: vec![
            line(
                0,
                "80.00",
                vec![cas(Co, "45", "25.00"), cas(Pr, "2", "20.00")],
            ),
            line(
                1,
                "50.00",
                vec![cas(Co, "45", "20.55"), cas(Pr, "1", "10.00")],
            ),
        ],
        payment_date: "2026-04-10".to_owned(),
        ..Default::default()
    }
}

fn apply(key: &str, claim_id: &str, a: pb::Adjudication) -> pb::ApplyAdjudicationRequest {
    pb::ApplyAdjudicationRequest {
        idempotency_key: key.to_owned(),
        claim_ref: Some(pb::apply_adjudication_request::ClaimRef::ClaimId(
            claim_id.to_owned(),
        )),
        adjudication: Some(a),
    }
}

async fn claims_of(
    c: &mut support::payer::Client,
    patient_ref: &str,
) -> anyhow::Result<Vec<pb::Claim>> {
    Ok(c.list_claims(pb::ListClaimsRequest {
        patient_ref: patient_ref.to_owned(),
        ..Default::default()
    })
    .await?
    .into_inner()
    .claims)
}

/// A claim's answer without what differs between two claims given the same adjudication: ids,
/// control numbers, times, and which secondary claim was made (only that one was).
fn comparable(answer: &pb::ApplyAdjudicationResponse) -> pb::ApplyAdjudicationResponse {
    let mut answer = answer.clone();
    if let Some(c) = answer.claim.as_mut() {
        c.id.clear();
        c.patient_control_number.clear();
        c.created_at = None;
        c.updated_at = None;
        if !c.secondary_claim_id.is_empty() {
            c.secondary_claim_id = "made".to_owned();
        }
        for l in &mut c.lines {
            l.line_control_number.clear();
        }
        if let Some(a) = c.adjudication.as_mut() {
            a.applied_at = None;
            for l in &mut a.lines {
                l.line_control_number.clear();
            }
        }
    }
    answer
}

medbill_storage::conformance_tests! {
    namespace = "claims";

    async fn a_primary_balance_makes_a_linked_secondary_claim_with_cob_loops(env: TestEnv) -> anyhow::Result<()> {
        let suite = PayerSuite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let primary_cov = suite.coverage(Caller::TenantA, "pat-1", "SPX100000001").await?;
        let secondary_cov = suite
            .coverage_with(Caller::TenantA, "pat-1", SECOND_PAYER, "HMO0000001", elig::CoverageOrder::Secondary)
            .await?;
        let primary = create(&mut a, "c-1", professional("PCN-COB-0000000001", &primary_cov, "pat-1")).await?;
        suite.make_ready(Caller::TenantA, &primary.id).await?;
        let sent = a.submit_claims(pb::SubmitClaimsRequest { idempotency_key: "s-1".into(), claim_ids: vec![primary.id.clone()], max_claims: 0 }).await?.into_inner();
        assert_eq!(sent.batches.len(), 1, "{sent:?}");

        let answer = a.apply_adjudication(apply("era-cob-1/cp-1", &primary.id, primary_payment(&primary, "1"))).await?.into_inner();
        let paid = answer.claim.unwrap();
        assert_eq!(paid.status, pb::ClaimStatus::Paid as i32);
        assert!(!paid.secondary_claim_id.is_empty(), "a secondary claim was made: {paid:?}");
        assert_eq!(paid.secondary_claim_note, "");
        assert_eq!(get(&mut a, &primary.id).await?, paid, "GetClaim reads the link back");

        let secondary = get(&mut a, &paid.secondary_claim_id).await?;
        assert_eq!(secondary.primary_claim_id, primary.id, "linked both ways");
        assert_eq!(secondary.status, pb::ClaimStatus::Ready as i32, "scrubbed clean: {:?}", secondary.scrub_findings);
        assert_eq!(secondary.frequency_code, "1");
        assert_eq!(secondary.patient_control_number, "PCN-COB-000000000-S2", "first 17 of the primary's and -S2");
        assert_eq!(secondary.coverage_id, secondary_cov);
        assert_eq!(secondary.payer_id, SECOND_PAYER);
        assert_eq!(secondary.total_charge, "205.55");
        assert_eq!(secondary.lines.len(), 2);
        assert_eq!(secondary.diagnoses, primary.diagnoses);
        assert!(secondary.adjudication.is_none());
        let events = a.list_claim_events(pb::ListClaimEventsRequest { claim_id: secondary.id.clone(), ..Default::default() }).await?.into_inner().events;
        assert!(events[0].reason.contains("secondary claim (coordination of benefits)"), "{events:?}");
        assert_eq!(events[0].source_id, primary.id);
        assert_eq!(events.last().unwrap().status, pb::ClaimStatus::Ready as i32);

        // A redelivery of the adjudication answers the first result and makes no second claim.
        let again = a.apply_adjudication(apply("era-cob-1/cp-1", &primary.id, primary_payment(&primary, "1"))).await?.into_inner();
        assert_eq!(again.claim.unwrap().secondary_claim_id, paid.secondary_claim_id);
        assert_eq!(claims_of(&mut a, "pat-1").await?.len(), 2);

        // Its 837 goes to the secondary payer with the primary's payment in 2320/2330/2430.
        let sent = a.submit_claims(pb::SubmitClaimsRequest { idempotency_key: "s-2".into(), claim_ids: vec![secondary.id.clone()], max_claims: 0 }).await?.into_inner();
        assert_eq!(sent.batches.len(), 1, "{sent:?}");
        assert_eq!(sent.batches[0].route, SECOND_PAYER);
        assert_eq!(sent.batches[0].status, pb::SubmissionBatchStatus::Sent as i32, "{:?}", sent.batches[0]);
        let batch = a.get_submission_batch(pb::GetSubmissionBatchRequest { id: sent.batches[0].id.clone(), include_content: true }).await?.into_inner().batch.unwrap();
        let text = String::from_utf8(batch.content)?;
        for expected in [
            "SBR*S*18*",                               // 2000B: the secondary payer's subscriber
            "NM1*IL*1*TESTPATIENT*AVERY****MI*HMO0000001~",
            "NM1*PR*2*SIMULATED HMO CARE*****PI*SIMHMO~",
            "CLM*PCN-COB-000000000-S2*205.55***11:B:1*",
            "SBR*P*18*GRP100******CI~",                // 2320: the primary coverage
            "CAS*PR*3*10~",                            // 2320 claim-level CAS
            "AMT*D*120~",                              // 2320 what the primary paid
            "AMT*EAF*40~",                             // 2320 left to the patient
            "NM1*IL*1*TESTPATIENT*AVERY****MI*SPX100000001~", // 2330A
            "NM1*PR*2*SIMULATED PPO HEALTH*****PI*SIMPPO~",   // 2330B
            "DTP*573*D8*20260410~",
            "SVD*SIMPPO*80*HC:99213**1~",              // 2430 line 1
            "CAS*CO*45*25~CAS*PR*2*20~DTP*573*D8*20260410~",
            "SVD*SIMPPO*50*HC:G0439**1~",              // 2430 line 2
            "CAS*CO*45*20.55~CAS*PR*1*10~",
        ] {
            assert!(text.contains(expected), "{expected} missing from {text}");
        }
        let doc = medbill_x12::Document::parse(text.as_bytes());
        assert!(doc.problems.is_empty(), "{:?}", doc.problems);
        assert!(
            suite.sim.claims().claim_by_patient_control_number(SECOND_PAYER, "HMO0000001", "PCN-COB-000000000-S2").is_some(),
            "payer-sim received the secondary claim"
        );
        Ok(())
    }

    async fn a_denied_primary_makes_no_secondary_and_says_why(env: TestEnv) -> anyhow::Result<()> {
        let suite = PayerSuite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-2", "SPX100000001").await?;
        suite
            .coverage_with(Caller::TenantA, "pat-2", SECOND_PAYER, "HMO0000001", elig::CoverageOrder::Secondary)
            .await?;
        let claim = create(&mut a, "c-1", professional("PCN-DENIED", &cov, "pat-2")).await?;
        suite.make_ready(Caller::TenantA, &claim.id).await?;
        suite.advance(Caller::TenantA, &claim.id, ClaimStatus::Submitted).await?;
        let mut denial = primary_payment(&claim, "4");
        denial.paid = "0".into();
        let answer = a.apply_adjudication(apply("k-1", &claim.id, denial)).await?.into_inner();
        let denied = answer.claim.unwrap();
        assert_eq!(denied.status, pb::ClaimStatus::Denied as i32);
        assert_eq!(denied.secondary_claim_id, "");
        assert_eq!(denied.secondary_claim_note, notes::DENIED);
        assert_eq!(get(&mut a, &claim.id).await?.secondary_claim_note, notes::DENIED);
        assert_eq!(claims_of(&mut a, "pat-2").await?.len(), 1, "no secondary claim");
        Ok(())
    }

    async fn no_secondary_coverage_makes_no_secondary_and_says_why(env: TestEnv) -> anyhow::Result<()> {
        let suite = PayerSuite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let cov = suite.coverage(Caller::TenantA, "pat-3", "SPX100000001").await?;
        // A secondary of another patient, and a second coverage of this patient that is not
        // secondary: neither is billed.
        suite
            .coverage_with(Caller::TenantA, "pat-4", SECOND_PAYER, "HMO0000001", elig::CoverageOrder::Secondary)
            .await?;
        suite
            .coverage_with(Caller::TenantA, "pat-3", SECOND_PAYER, "HMO0000002", elig::CoverageOrder::Tertiary)
            .await?;
        let claim = create(&mut a, "c-1", professional("PCN-ALONE", &cov, "pat-3")).await?;
        suite.make_ready(Caller::TenantA, &claim.id).await?;
        suite.advance(Caller::TenantA, &claim.id, ClaimStatus::Submitted).await?;
        let answer = a.apply_adjudication(apply("k-1", &claim.id, primary_payment(&claim, "1"))).await?.into_inner();
        let paid = answer.claim.unwrap();
        assert_eq!(paid.status, pb::ClaimStatus::Paid as i32);
        assert_eq!(paid.secondary_claim_id, "");
        assert_eq!(paid.secondary_claim_note, notes::NO_COVERAGE);
        assert_eq!(claims_of(&mut a, "pat-3").await?.len(), 1);

        // Paid in full after contractual adjustments: nothing left for a secondary.
        let other = create(&mut a, "c-2", professional("PCN-FULL", &cov, "pat-3")).await?;
        suite.make_ready(Caller::TenantA, &other.id).await?;
        suite.advance(Caller::TenantA, &other.id, ClaimStatus::Submitted).await?;
        let mut full = primary_payment(&other, "1");
        full.adjustments.clear();
        full.paid = "160.00".into();
        full.lines[0].paid = "100.00".into();
        full.lines[0].adjustments.truncate(1);
        full.lines[1].paid = "60.00".into();
        full.lines[1].adjustments.truncate(1);
        let answer = a.apply_adjudication(apply("k-2", &other.id, full)).await?.into_inner();
        assert_eq!(answer.claim.unwrap().secondary_claim_note, notes::NO_BALANCE);
        Ok(())
    }

    async fn a_batch_writes_plain_adjudications_together_and_answers_as_single_calls_do(env: TestEnv) -> anyhow::Result<()> {
        use pb::apply_adjudication_result::Outcome;
        let suite = PayerSuite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        // pat-1 has a secondary coverage (a secondary claim is made), pat-2 none.
        let with_secondary = suite.coverage(Caller::TenantA, "pat-1", "SPX100000001").await?;
        suite
            .coverage_with(Caller::TenantA, "pat-1", SECOND_PAYER, "HMO0000001", elig::CoverageOrder::Secondary)
            .await?;
        let alone = suite.coverage(Caller::TenantA, "pat-2", "SPX100000002").await?;
        let remark = |code: &str| common::RemarkCode { code: code.to_owned(), ..Default::default() };
        // Each case is applied to two like claims: by ApplyAdjudication to the first, as one item
        // of a single ApplyAdjudications to the second.
        let cases: Vec<(&str, &str, &str)> = vec![
            ("paid, no secondary coverage", "pat-2", "1"),
            ("denied, with remarks", "pat-2", "4"),
            ("paid, a secondary claim made", "pat-1", "1"),
            ("paid as the secondary payer", "pat-2", "2"),
            ("reversed", "pat-2", "22"),
        ];
        let mut pairs = Vec::new();
        for (i, (_, patient, _)) in cases.iter().enumerate() {
            let cov = if *patient == "pat-1" { &with_secondary } else { &alone };
            let mut pair = Vec::new();
            for side in ["A", "B"] {
                let pcn = format!("PCN-BATCH-{side}{i}");
                let claim = create(&mut a, &format!("c-{side}{i}"), professional(&pcn, cov, patient)).await?;
                suite.make_ready(Caller::TenantA, &claim.id).await?;
                suite.advance(Caller::TenantA, &claim.id, ClaimStatus::Submitted).await?;
                pair.push(claim);
            }
            pairs.push(pair);
        }
        let adjudication_of = |claim: &pb::Claim, code: &str| {
            let mut adjudication = primary_payment(claim, if code == "22" { "1" } else { code });
            match code {
                "4" => {
                    adjudication.paid = "0".into();
                    adjudication.remarks = vec![remark("N130")];
                    for l in &mut adjudication.lines {
                        l.paid = "0".into();
                        l.remarks = vec![remark("M15"), remark("N20")];
                    }
                }
                "22" => {
                    let negate = |m: &mut String| *m = format!("-{m}");
                    adjudication.claim_status_code = "22".into();
                    negate(&mut adjudication.charge);
                    negate(&mut adjudication.paid);
                    negate(&mut adjudication.patient_responsibility);
                    for adj in &mut adjudication.adjustments {
                        negate(&mut adj.amount);
                    }
                    for l in &mut adjudication.lines {
                        negate(&mut l.charge);
                        negate(&mut l.paid);
                        for adj in &mut l.adjustments {
                            negate(&mut adj.amount);
                        }
                    }
                }
                _ => {}
            }
            adjudication
        };
        // The reversal needs an adjudication in force first.
        let reversed = cases.len() - 1;
        for (side, claim) in pairs[reversed].iter().enumerate() {
            a.apply_adjudication(apply(&format!("first-{side}"), &claim.id, primary_payment(claim, "1"))).await?;
        }

        let mut singles = Vec::new();
        for ((_, _, code), pair) in cases.iter().zip(&pairs) {
            let key = format!("single-{}", pair[0].id);
            singles.push(a.apply_adjudication(apply(&key, &pair[0].id, adjudication_of(&pair[0], code))).await?.into_inner());
        }
        let items = cases
            .iter()
            .zip(&pairs)
            .map(|((_, _, code), pair)| apply(&format!("batch-{}", pair[1].id), &pair[1].id, adjudication_of(&pair[1], code)))
            .collect();
        let results = a.apply_adjudications(pb::ApplyAdjudicationsRequest { items }).await?.into_inner().results;

        for (i, ((case, _, _), pair)) in cases.iter().zip(&pairs).enumerate() {
            let Some(Outcome::Applied(batched)) = &results[i].outcome else {
                panic!("{case}: {:?}", results[i]);
            };
            assert_eq!(comparable(batched), comparable(&singles[i]), "{case}");
            // What the batch answered is what it stored, and the history says the same.
            let claim = batched.claim.clone().unwrap();
            assert_eq!(get(&mut a, &pair[1].id).await?, claim, "{case}: read back");
            let events = |id: &str| {
                let mut c = a.clone();
                let id = id.to_owned();
                async move {
                    let events = c.list_claim_events(pb::ListClaimEventsRequest { claim_id: id, ..Default::default() }).await?.into_inner().events;
                    anyhow::Ok(events.into_iter().map(|e| (e.status, e.reason, e.source_id)).collect::<Vec<_>>())
                }
            };
            assert_eq!(events(&pair[1].id).await?, events(&pair[0].id).await?, "{case}: history");
        }
        let statuses: Vec<i32> = singles.iter().map(|r| r.claim.as_ref().unwrap().status).collect();
        use pb::ClaimStatus as S;
        assert_eq!(statuses, [S::Paid, S::Denied, S::Paid, S::Paid, S::Submitted].map(|s| s as i32));
        assert_eq!(singles[0].claim.as_ref().unwrap().secondary_claim_note, notes::NO_COVERAGE);
        assert_eq!(singles[1].claim.as_ref().unwrap().secondary_claim_note, notes::DENIED);
        assert_eq!(claims_of(&mut a, "pat-1").await?.len(), 4, "both paid claims of pat-1 got their secondary");
        Ok(())
    }
}
