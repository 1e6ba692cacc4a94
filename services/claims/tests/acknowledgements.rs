//! Acknowledgements: 999 and 277CA picked up from payer-sim by the pickup pass, and TA1 / 999 files
//! pushed through IngestAcknowledgement, on SQLite and (with `MEDBILL_TEST_PG_URL`) PostgreSQL.

mod support;

use medbill_proto::claims::v1 as pb;
use medbill_storage::testing::TestEnv;
use medbill_testkit::Caller;
use medbill_x12::model::ack::InterchangeAck;
use medbill_x12::model::claim_status::AcknowledgedClaim;
use medbill_x12::write::{
    Envelope, InterchangeHeader, Separators, claim_acknowledgment_interchange, samples,
    ta1_interchange,
};
use support::payer::{PayerSuite, get, submit_all};
use tonic::Code;

async fn events(
    c: &mut support::payer::Client,
    claim_id: &str,
) -> anyhow::Result<Vec<pb::ClaimStatusChange>> {
    Ok(c.list_claim_events(pb::ListClaimEventsRequest {
        claim_id: claim_id.to_owned(),
        ..Default::default()
    })
    .await?
    .into_inner()
    .events)
}

async fn ingest(
    c: &mut support::payer::Client,
    key: &str,
    content: &[u8],
) -> Result<pb::AcknowledgementResult, tonic::Status> {
    Ok(c.ingest_acknowledgement(pb::IngestAcknowledgementRequest {
        idempotency_key: key.to_owned(),
        content: content.to_vec(),
        ..Default::default()
    })
    .await?
    .into_inner()
    .result
    .unwrap_or_default())
}

medbill_storage::conformance_tests! {
    namespace = "claims";

    async fn picked_up_acknowledgements_accept_and_reject_claims_once(env: TestEnv) -> anyhow::Result<()> {
        let suite = PayerSuite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let good = suite.ready_claim(&mut a, "PCN-1", "SPX100000001").await?;
        // SPX100000004 is not covered in 2026 at payer-sim: 277CA A3:109.
        let lapsed = suite.ready_claim(&mut a, "PCN-2", "SPX100000004").await?;
        let batch = submit_all(&mut a, "s-1").await?.batches.remove(0);
        assert_eq!(batch.status, pb::SubmissionBatchStatus::Sent as i32);

        let taken = suite.pick_up().await?;
        assert_eq!(taken, 3, "the TA1 (ISA14 asks for one), the 999 and the 277CA");
        let accepted = get(&mut a, &good.id).await?;
        assert_eq!(accepted.status, pb::ClaimStatus::Accepted as i32);
        assert!(accepted.payer_claim_control_number.starts_with("SIM"), "REF*1K recorded: {}", accepted.payer_claim_control_number);
        let rejected = get(&mut a, &lapsed.id).await?;
        assert_eq!(rejected.status, pb::ClaimStatus::Rejected as i32);
        let last = events(&mut a, &lapsed.id).await?.pop().unwrap();
        assert_eq!(last.source, pb::StatusChangeSource::ClaimAcknowledgement as i32);
        assert!(last.reason.starts_with("277CA A3:109: "), "{}", last.reason);
        assert!(last.reason.contains("not eligible for benefits for the submitted dates of service"), "plain words: {}", last.reason);

        let stored = a.get_submission_batch(pb::GetSubmissionBatchRequest { id: batch.id.clone(), include_content: false }).await?.into_inner().batch.unwrap();
        assert_eq!(stored.status, pb::SubmissionBatchStatus::Accepted as i32, "the 999 accepted the set");
        assert_eq!(stored.acknowledgement_ids.len(), 3);

        // Nothing is waiting any more, and the claims do not move again.
        assert_eq!(suite.pick_up().await?, 0);
        assert_eq!(events(&mut a, &good.id).await?.len(), 4, "created, ready, submitted, accepted");
        Ok(())
    }

    async fn a_277ca_picked_up_after_the_payment_leaves_the_claim_paid(env: TestEnv) -> anyhow::Result<()> {
        let suite = PayerSuite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let claim = suite.ready_claim(&mut a, "PCN-1", "SPX100000001").await?;
        submit_all(&mut a, "s-1").await?;
        // The payer paid before its 277CA was picked up (remittance delivered the ERA first).
        let paid = pb::Adjudication {
            era_id: "era-1".to_owned(),
            claim_payment_id: "cp-1".to_owned(),
            claim_status_code: "1".to_owned(),
            charge: "205.55".to_owned(),
            paid: "150.00".to_owned(),
            payer_claim_control_number: "SIM-ICN-1".to_owned(),
            payment_date: "2026-04-10".to_owned(),
            ..Default::default()
        };
        a.apply_adjudication(pb::ApplyAdjudicationRequest {
            idempotency_key: "era-1/cp-1".to_owned(),
            claim_ref: Some(pb::apply_adjudication_request::ClaimRef::ClaimId(claim.id.clone())),
            adjudication: Some(paid),
        })
        .await?;
        assert_eq!(get(&mut a, &claim.id).await?.status, pb::ClaimStatus::Paid as i32);
        let before = events(&mut a, &claim.id).await?.len();

        assert_eq!(suite.pick_up().await?, 3, "TA1, 999 and the late 277CA");
        let after = get(&mut a, &claim.id).await?;
        assert_eq!(after.status, pb::ClaimStatus::Paid as i32, "the acknowledgement does not undo the payment");
        assert_eq!(events(&mut a, &claim.id).await?.len(), before);
        Ok(())
    }

    async fn a_277ca_moves_its_claims_together_and_a_claim_named_twice_in_file_order(env: TestEnv) -> anyhow::Result<()> {
        let suite = PayerSuite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let twice = suite.ready_claim(&mut a, "PCN-1", "SPX100000001").await?;
        let once = suite.ready_claim(&mut a, "PCN-2", "SPX100000001").await?;
        let also = suite.ready_claim(&mut a, "PCN-3", "SPX100000001").await?;
        let batch = submit_all(&mut a, "s-1").await?.batches.remove(0);

        // PCN-2 and PCN-3 accepted (one move for both); PCN-1 accepted, then rejected further
        // down the same file: it moves one claim at a time, in file order.
        let mut ack = samples::claim_acknowledgment();
        ack.receiver_trace = batch.id.clone();
        let template = ack.providers[0].claims.clone();
        let (accepted, rejected) = (&template[0], &template[1]);
        let named = |pcn: &str, like: &AcknowledgedClaim, icn: Option<&str>| AcknowledgedClaim {
            patient_control_number: pcn.to_owned(),
            payer_claim_number: icn.map(str::to_owned),
            ..like.clone()
        };
        ack.providers[0].claims = vec![
            named("PCN-1", accepted, Some("ICN-1")),
            named("PCN-2", accepted, Some("ICN-2")),
            named("PCN-1", rejected, None),
            named("PCN-3", accepted, Some("ICN-3")),
        ];
        let file = claim_acknowledgment_interchange(Separators::default(), &Envelope::test_default(91, 91, 1), &ack)?;
        let result = ingest(&mut a, "ca-1", file.as_bytes()).await?;
        assert_eq!(result.claims_updated, 4, "{result:?}");
        assert!(result.warnings.is_empty(), "{:?}", result.warnings);

        for (claim, icn) in [(&once, "ICN-2"), (&also, "ICN-3")] {
            let now = get(&mut a, &claim.id).await?;
            assert_eq!(now.status, pb::ClaimStatus::Accepted as i32);
            assert_eq!(now.payer_claim_control_number, icn, "REF*1K of each claim, not another's");
            let last = events(&mut a, &claim.id).await?.pop().unwrap();
            assert!(last.reason.starts_with("277CA A2:20: "), "{}", last.reason);
        }
        let now = get(&mut a, &twice.id).await?;
        assert_eq!(now.status, pb::ClaimStatus::Rejected as i32, "the later status in the file wins");
        assert_eq!(now.payer_claim_control_number, "ICN-1");
        let history: Vec<i32> = events(&mut a, &twice.id).await?.iter().map(|e| e.status).collect();
        assert_eq!(
            &history[history.len() - 2..],
            [pb::ClaimStatus::Accepted as i32, pb::ClaimStatus::Rejected as i32]
        );
        // The tenant's history (these three claims') stays gap-free across the grouped and the
        // one-by-one moves.
        let mut sequences = Vec::new();
        for claim in [&twice, &once, &also] {
            sequences.extend(events(&mut a, &claim.id).await?.iter().map(|e| e.sequence));
        }
        sequences.sort_unstable();
        assert_eq!(sequences, (1..=sequences.len() as u64).collect::<Vec<_>>());
        Ok(())
    }

    async fn pushed_acknowledgements_apply_once_and_bad_files_name_the_problem(env: TestEnv) -> anyhow::Result<()> {
        let suite = PayerSuite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let claim = suite.ready_claim(&mut a, "PCN-1", "SPX100000001").await?;
        let batch = submit_all(&mut a, "s-1").await?.batches.remove(0);

        // Take the files from payer-sim as a clearinghouse portal download would, and push them:
        // first the TA1 (the 837 asked for one), then the 999.
        let connection = suite.submitter.connections().get("SIMPPO")?;
        let ta1_file = connection.next_inbound().await?.expect("a TA1 is waiting");
        connection.acknowledge(&ta1_file.file_id).await?;
        let interchange = ingest(&mut a, "ack-0", &ta1_file.contents).await?;
        assert_eq!(interchange.kind, pb::AcknowledgementKind::Ta1 as i32);
        assert!(interchange.accepted);
        assert_eq!(interchange.batch_id, batch.id);
        assert_eq!(interchange.claims_updated, 0);
        let file = connection.next_inbound().await?.expect("a 999 is waiting");
        let first = ingest(&mut a, "ack-1", &file.contents).await?;
        assert_eq!(first.kind, pb::AcknowledgementKind::AcknowledgementKind999 as i32);
        assert_eq!(first.batch_id, batch.id);
        assert!(first.accepted);
        assert_eq!(first.ack_code, "A");
        assert_eq!(first.transaction_sets.len(), 1);
        assert!(first.transaction_sets[0].accepted);
        assert!(!first.duplicate);
        // The same key again: the first answer; the same file under a new key: marked duplicate.
        assert_eq!(ingest(&mut a, "ack-1", &file.contents).await?, first);
        let again = ingest(&mut a, "ack-2", &file.contents).await?;
        assert!(again.duplicate);
        assert_eq!(again.id, first.id);

        // A TA1 rejecting the interchange rejects its claims, with the note in plain words.
        let ta1 = ta1_interchange(
            Separators::default(),
            &InterchangeHeader::test_default(77),
            &InterchangeAck {
                control_number: batch.interchange_control_number.parse()?,
                date: chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
                time: chrono::NaiveTime::from_hms_opt(9, 30, 0).unwrap(),
                status: "R".into(),
                note_code: "006".into(),
            },
        )?;
        let rejected = ingest(&mut a, "ack-3", ta1.as_bytes()).await?;
        assert_eq!(rejected.kind, pb::AcknowledgementKind::Ta1 as i32);
        assert!(!rejected.accepted);
        assert_eq!(rejected.claims_updated, 1);
        assert_eq!(get(&mut a, &claim.id).await?.status, pb::ClaimStatus::Rejected as i32);
        let reason = events(&mut a, &claim.id).await?.pop().unwrap().reason;
        assert_eq!(reason, "TA1 rejected interchange 000000001: note 006 (invalid interchange sender id)");

        // A TA1 for an interchange never sent changes nothing and says so.
        let stray = ta1_interchange(Separators::default(), &InterchangeHeader::test_default(78), &InterchangeAck {
            control_number: 4242,
            date: chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
            time: chrono::NaiveTime::from_hms_opt(9, 30, 0).unwrap(),
            status: "A".into(),
            note_code: "000".into(),
        })?;
        let stray = ingest(&mut a, "ack-4", stray.as_bytes()).await?;
        assert_eq!(stray.claims_updated, 0);
        assert!(stray.warnings[0].contains("000004242"), "{:?}", stray.warnings);

        // Another tenant's push cannot touch tenant A's batch.
        let mut b = suite.client(Caller::TenantB);
        let theirs = ingest(&mut b, "ack-1", &file.contents).await?;
        assert!(theirs.batch_id.is_empty() && theirs.claims_updated == 0, "{theirs:?}");

        // Unreadable input names the problem; a wrong kind too; nothing is stored.
        let garbage = ingest(&mut a, "bad-1", b"ISA*00*garbage~").await.unwrap_err();
        assert_eq!(garbage.code(), Code::InvalidArgument);
        assert!(garbage.message().starts_with("invalid content: "), "{}", garbage.message());
        assert!(garbage.message().contains("segment") || garbage.message().contains("byte"), "{}", garbage.message());
        let wrong_kind = a.ingest_acknowledgement(pb::IngestAcknowledgementRequest {
            idempotency_key: "bad-2".into(),
            content: ta1.into_bytes(),
            kind: pb::AcknowledgementKind::AcknowledgementKind277ca.into(),
            ..Default::default()
        }).await.unwrap_err();
        assert!(wrong_kind.message().contains("is a TA1, not the 277CA"), "{}", wrong_kind.message());
        let empty = a.ingest_acknowledgement(pb::IngestAcknowledgementRequest { idempotency_key: "bad-3".into(), ..Default::default() }).await.unwrap_err();
        assert_eq!(empty.message(), "invalid content: is required");
        Ok(())
    }
}
