//! The batch path (PostPatientResponsibilities, RecordPayments) through the generated gRPC
//! client, on SQLite and, when `MEDBILL_TEST_PG_URL` is set, on PostgreSQL: a batch applies in
//! item order, a redelivered batch changes nothing, an item applied singly is applied once
//! when a batch carries it again, a bad item fails alone naming its field and leaves nothing
//! written, and the batch size is capped.

use medbill_collections::{CollectionsService, open_store};
use medbill_domain::ClaimId;
use medbill_proto::collections::v1 as pb;
use medbill_proto::collections::v1::collections_service_client::CollectionsServiceClient;
use medbill_proto::collections::v1::post_patient_responsibility_result::Outcome as PrOutcome;
use medbill_proto::collections::v1::record_payment_result::Outcome as PayOutcome;
use medbill_runtime::batch::MAX_BATCH_ITEMS;
use medbill_runtime::client::TracedChannel;
use medbill_storage::Database;
use medbill_testkit::{Caller, TestServer};
use tonic::Code;

type Client = CollectionsServiceClient<TracedChannel>;

async fn serve(db: Database) -> anyhow::Result<(TestServer, Client)> {
    let service = CollectionsService::new(open_store(db).await?);
    let server = TestServer::start(tonic::service::Routes::new(service.into_server())).await;
    let client = CollectionsServiceClient::new(server.channel(Caller::TenantA));
    Ok((server, client))
}

fn pr(
    key: &str,
    account: &str,
    claim: &ClaimId,
    amount: &str,
) -> pb::PostPatientResponsibilityRequest {
    pb::PostPatientResponsibilityRequest {
        idempotency_key: key.into(),
        account_id: account.into(),
        claim_id: claim.to_string(),
        amount: amount.into(),
        ..Default::default()
    }
}

fn payment(key: &str, account: &str, amount: &str) -> pb::RecordPaymentRequest {
    pb::RecordPaymentRequest {
        idempotency_key: key.into(),
        account_id: account.into(),
        amount: amount.into(),
        method: pb::PaymentMethod::Card as i32,
        ..Default::default()
    }
}

async fn open(c: &mut Client, patient: &str) -> anyhow::Result<String> {
    Ok(c.open_account(pb::OpenAccountRequest {
        idempotency_key: format!("open-{patient}"),
        patient_ref: patient.into(),
        ..Default::default()
    })
    .await?
    .into_inner()
    .account
    .unwrap_or_default()
    .id)
}

async fn balance(c: &mut Client, id: &str) -> anyhow::Result<String> {
    Ok(c.get_account(pb::GetAccountRequest {
        id: id.into(),
        include_aging: false,
    })
    .await?
    .into_inner()
    .account
    .unwrap_or_default()
    .balance)
}

async fn entry_count(c: &mut Client, id: &str) -> anyhow::Result<usize> {
    Ok(c.list_ledger_entries(pb::ListLedgerEntriesRequest {
        account_id: id.into(),
        page_size: 500,
        ..Default::default()
    })
    .await?
    .into_inner()
    .entries
    .len())
}

fn pr_response(
    r: &pb::PostPatientResponsibilityResult,
) -> anyhow::Result<&pb::PostPatientResponsibilityResponse> {
    match &r.outcome {
        Some(PrOutcome::Response(response)) => Ok(response),
        other => anyhow::bail!("expected a response, got {other:?}"),
    }
}

fn pr_error(
    r: &pb::PostPatientResponsibilityResult,
) -> anyhow::Result<&medbill_proto::common::v1::ItemError> {
    match &r.outcome {
        Some(PrOutcome::Error(e)) => Ok(e),
        other => anyhow::bail!("expected an error, got {other:?}"),
    }
}

medbill_storage::conformance_tests! {
    namespace = "collections";

    async fn a_batch_applies_each_item_once_and_a_bad_item_fails_alone(db: Database) -> anyhow::Result<()> {
        let (_server, mut c) = serve(db).await?;
        let (a, b) = (open(&mut c, "pat-a").await?, open(&mut c, "pat-b").await?);
        let (claim_a, claim_b) = (ClaimId::new(), ClaimId::new());

        // An item sent singly first: the batch carrying it again answers its first result.
        let single = c.post_patient_responsibility(pr("era-1/clp-1", &a, &claim_a, "100.00")).await?.into_inner();
        let items = vec![
            pr("era-1/clp-1", &a, &claim_a, "100.00"),
            pr("era-1/clp-2", &b, &claim_b, "40.00"),
            // Bad request: the field is named, nothing of it is written.
            pr("era-1/clp-3", &b, &claim_b, "12.345"),
            // Only the database can tell: a reversal above what the claim holds, undone alone.
            pr("era-1/clp-4", &b, &claim_b, "-90.00"),
            // Applied after the item before it in the same batch: 40.00 then -15.00.
            pr("era-1/clp-5", &b, &claim_b, "-15.00"),
        ];
        let batch = pb::PostPatientResponsibilitiesRequest { items };
        let results = c.post_patient_responsibilities(batch.clone()).await?.into_inner().results;
        assert_eq!(results.len(), 5);
        assert_eq!(Some(pr_response(&results[0])?), Some(&single), "the single call's answer");
        assert_eq!(pr_response(&results[1])?.account.as_ref().map(|x| x.balance.as_str()), Some("40.00"));
        let bad = pr_error(&results[2])?;
        assert_eq!(bad.code, Code::InvalidArgument as i32);
        assert!(bad.message.contains("amount"), "{bad:?}");
        let over = pr_error(&results[3])?;
        assert_eq!(over.code, Code::FailedPrecondition as i32);
        assert!(over.message.contains("exceeds the 40.00"), "{over:?}");
        assert_eq!(pr_response(&results[4])?.account.as_ref().map(|x| x.balance.as_str()), Some("25.00"));
        assert_eq!((balance(&mut c, &a).await?, entry_count(&mut c, &a).await?), ("100.00".into(), 1));
        assert_eq!((balance(&mut c, &b).await?, entry_count(&mut c, &b).await?), ("25.00".into(), 2));

        // Redelivered: the same answers, nothing written; the failed items are tried again and
        // fail the same way.
        let again = c.post_patient_responsibilities(batch).await?.into_inner().results;
        assert_eq!(again[1], results[1]);
        assert_eq!(again[4], results[4]);
        assert_eq!(pr_error(&again[3])?.code, Code::FailedPrecondition as i32);
        assert_eq!((balance(&mut c, &b).await?, entry_count(&mut c, &b).await?), ("25.00".into(), 2));

        // A failed item's key is free for the corrected request, singly or in a batch; a key
        // used for another request fails that item only.
        let fixed = pb::PostPatientResponsibilitiesRequest {
            items: vec![
                pr("era-1/clp-3", &b, &claim_b, "12.35"),
                pr("era-1/clp-2", &b, &claim_b, "41.00"),
            ],
        };
        let results = c.post_patient_responsibilities(fixed).await?.into_inner().results;
        assert_eq!(pr_response(&results[0])?.account.as_ref().map(|x| x.balance.as_str()), Some("37.35"));
        assert_eq!(pr_error(&results[1])?.code, Code::AlreadyExists as i32);
        assert_eq!(balance(&mut c, &b).await?, "37.35");

        // The single call replays what the batch applied.
        let replayed = c.post_patient_responsibility(pr("era-1/clp-5", &b, &claim_b, "-15.00")).await?.into_inner();
        assert_eq!(pr_response(&again[4])?, &replayed);
        Ok(())
    }

    async fn payments_in_a_batch_are_applied_once(db: Database) -> anyhow::Result<()> {
        let (_server, mut c) = serve(db).await?;
        let (a, b) = (open(&mut c, "pat-a").await?, open(&mut c, "pat-b").await?);
        c.post_patient_responsibility(pr("pr-a", &a, &ClaimId::new(), "100.00")).await?;
        c.record_payment(payment("pay-1", &a, "10.00")).await?;
        let mut check = payment("pay-4", &b, "5.00");
        check.method = pb::PaymentMethod::Check as i32;
        let batch = pb::RecordPaymentsRequest {
            items: vec![
                payment("pay-1", &a, "10.00"),
                payment("pay-2", &a, "30.00"),
                payment("pay-3", &b, "0.00"),
                check,
                payment("pay-5", &b, "20.00"),
                payment("pay-6", &ClaimId::new().to_string(), "1.00"),
            ],
        };
        let results = c.record_payments(batch.clone()).await?.into_inner().results;
        let outcome = |i: usize| results[i].outcome.clone();
        let balance_after = |o: Option<PayOutcome>| match o {
            Some(PayOutcome::Response(r)) => r.account.map(|a| a.balance),
            _ => None,
        };
        let error = |o: Option<PayOutcome>| match o {
            Some(PayOutcome::Error(e)) => Some((e.code, e.message)),
            _ => None,
        };
        assert_eq!(balance_after(outcome(0)), Some("90.00".into()), "the single call's answer");
        assert_eq!(balance_after(outcome(1)), Some("60.00".into()));
        let zero = error(outcome(2)).unwrap_or_default();
        assert!(zero.0 == Code::InvalidArgument as i32 && zero.1.contains("amount"), "{zero:?}");
        let no_reference = error(outcome(3)).unwrap_or_default();
        assert!(no_reference.1.contains("reference"), "{no_reference:?}");
        assert_eq!(balance_after(outcome(4)), Some("-20.00".into()), "a credit balance");
        assert_eq!(error(outcome(5)).map(|e| e.0), Some(Code::NotFound as i32));

        let again = c.record_payments(batch).await?.into_inner().results;
        assert_eq!(again[1], results[1]);
        assert_eq!(again[4], results[4]);
        assert_eq!((balance(&mut c, &a).await?, entry_count(&mut c, &a).await?), ("60.00".into(), 3));
        assert_eq!((balance(&mut c, &b).await?, entry_count(&mut c, &b).await?), ("-20.00".into(), 1));
        Ok(())
    }

    async fn a_batch_holds_one_to_a_thousand_items(db: Database) -> anyhow::Result<()> {
        let (_server, mut c) = serve(db).await?;
        let empty = c.record_payments(pb::RecordPaymentsRequest { items: vec![] }).await.err();
        assert_eq!(empty.as_ref().map(tonic::Status::code), Some(Code::InvalidArgument));
        let a = open(&mut c, "pat-a").await?;
        let items = (0..=MAX_BATCH_ITEMS).map(|i| payment(&format!("p-{i}"), &a, "1.00")).collect();
        let over = c.record_payments(pb::RecordPaymentsRequest { items }).await.err();
        let over = over.ok_or_else(|| anyhow::anyhow!("1,001 items accepted"))?;
        assert_eq!(over.code(), Code::InvalidArgument);
        assert!(over.message().contains("items"), "{over:?}");
        assert_eq!(entry_count(&mut c, &a).await?, 0);
        Ok(())
    }
}
