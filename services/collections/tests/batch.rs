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

/// An account as the caller sees it, less what differs between two tenants given the same
/// items (ids and times).
fn same_account(a: Option<pb::Account>) -> Option<pb::Account> {
    a.map(|a| pb::Account {
        id: String::new(),
        created_at: None,
        updated_at: None,
        ..a
    })
}

/// A ledger entry less what differs between two tenants given the same items (ids, times and
/// the payment record's id a payment names as its source).
fn same_entry(e: pb::JournalEntry) -> pb::JournalEntry {
    let payment = e.kind == pb::EntryKind::Payment as i32;
    pb::JournalEntry {
        id: String::new(),
        account_id: String::new(),
        posted_at: None,
        source_ref: if payment { String::new() } else { e.source_ref },
        ..e
    }
}

async fn ledger(c: &mut Client, id: &str) -> anyhow::Result<Vec<pb::JournalEntry>> {
    Ok(c.list_ledger_entries(pb::ListLedgerEntriesRequest {
        account_id: id.into(),
        page_size: 500,
        ..Default::default()
    })
    .await?
    .into_inner()
    .entries
    .into_iter()
    .map(same_entry)
    .collect())
}

async fn account(c: &mut Client, id: &str) -> anyhow::Result<Option<pb::Account>> {
    Ok(same_account(
        c.get_account(pb::GetAccountRequest {
            id: id.into(),
            include_aging: true,
        })
        .await?
        .into_inner()
        .account,
    ))
}

/// Patient responsibility for the accounts `ids` (opened alike on each tenant) and for patients
/// named by reference, several items per account: PR lines, reversals, corrections (one that
/// changes nothing), a new patient's account opened on demand twice in the batch.
fn responsibilities(
    ids: &[String],
    claims: &[ClaimId],
) -> Vec<pb::PostPatientResponsibilityRequest> {
    let line = |reason: &str, amount: &str| medbill_proto::common::v1::CasAdjustment {
        group: medbill_proto::common::v1::AdjustmentGroup::Pr as i32,
        reason: reason.into(),
        amount: amount.into(),
        ..Default::default()
    };
    let by_patient = |key: &str, patient: &str, claim: &ClaimId, amount: &str| {
        pb::PostPatientResponsibilityRequest {
            account_id: String::new(),
            patient_ref: patient.into(),
            ..pr(key, "", claim, amount)
        }
    };
    let corrected =
        |key: &str, claim: &ClaimId, amount: &str| pb::PostPatientResponsibilityRequest {
            corrected: true,
            ..pr(key, &ids[0], claim, amount)
        };
    vec![
        pr("r-1", &ids[0], &claims[0], "100.00"),
        pb::PostPatientResponsibilityRequest {
            adjustments: vec![line("1", "30.00"), line("2", "20.00")],
            era_id: claims[5].to_string(),
            patient_control_number: "PCN-2".into(),
            service_date: "2026-03-02".into(),
            total_charge: "400.00".into(),
            payer_paid: "350.00".into(),
            memo: "from the ERA".into(),
            ..pr("r-2", &ids[0], &claims[1], "50.00")
        },
        pr("r-3", &ids[0], &claims[0], "-40.00"),
        corrected("r-4", &claims[1], "35.00"),
        corrected("r-5", &claims[1], "35.00"),
        by_patient("r-6", "pat-new", &claims[2], "70.00"),
        by_patient("r-7", "pat-b", &claims[3], "20.00"),
        pr("r-8", &ids[1], &claims[3], "5.00"),
        by_patient("r-9", "pat-new", &claims[4], "30.00"),
        pr("r-10", &ids[1], &claims[3], "-25.00"),
    ]
}

/// Payments for the accounts `ids`, several per account: oldest claims first, a named claim,
/// overpayments kept as credit, a check.
fn payments(ids: &[String], claims: &[ClaimId]) -> Vec<pb::RecordPaymentRequest> {
    vec![
        payment("p-1", &ids[0], "30.00"),
        pb::RecordPaymentRequest {
            claim_id: claims[1].to_string(),
            ..payment("p-2", &ids[0], "45.00")
        },
        payment("p-3", &ids[2], "10.00"),
        payment("p-4", &ids[0], "100.00"),
        pb::RecordPaymentRequest {
            method: pb::PaymentMethod::Check as i32,
            reference: "CHK-9".into(),
            payer_type: pb::PayerType::Guarantor as i32,
            ..payment("p-5", &ids[1], "12.50")
        },
        payment("p-6", &ids[2], "95.00"),
        payment("p-7", &ids[0], "1.00"),
    ]
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

    async fn items_written_together_match_the_same_items_one_by_one(db: Database) -> anyhow::Result<()> {
        let service = CollectionsService::new(open_store(db).await?);
        let server = TestServer::start(tonic::service::Routes::new(service.into_server())).await;
        // The batch on one tenant, the same items one call each on another.
        let mut together = CollectionsServiceClient::new(server.channel(Caller::TenantA));
        let mut alone = CollectionsServiceClient::new(server.channel(Caller::TenantB));
        // The last id stands for the ERA.
        let claims: Vec<ClaimId> = (0..6).map(|_| ClaimId::new()).collect();
        let mut ids_together = vec![open(&mut together, "pat-a").await?, open(&mut together, "pat-b").await?];
        let mut ids_alone = vec![open(&mut alone, "pat-a").await?, open(&mut alone, "pat-b").await?];

        let items = responsibilities(&ids_together, &claims);
        let batch = pb::PostPatientResponsibilitiesRequest { items };
        let results = together.post_patient_responsibilities(batch).await?.into_inner().results;
        let mut answers_together = Vec::new();
        for r in &results {
            answers_together.push(pr_response(r)?.clone());
        }
        let mut answers_alone = Vec::new();
        for item in responsibilities(&ids_alone, &claims) {
            answers_alone.push(alone.post_patient_responsibility(item).await?.into_inner());
        }
        // The new patient's account, opened on demand by both.
        ids_together.push(answers_together[5].account.clone().unwrap_or_default().id);
        ids_alone.push(answers_alone[5].account.clone().unwrap_or_default().id);
        assert_eq!(answers_together[8].account.as_ref().map(|a| a.id.as_str()), Some(ids_together[2].as_str()));
        let same = |answers: Vec<pb::PostPatientResponsibilityResponse>| -> Vec<_> {
            answers.into_iter().map(|a| (same_account(a.account), a.entry.map(same_entry))).collect()
        };
        let (answers_together, answers_alone) = (same(answers_together), same(answers_alone));
        assert_eq!(answers_together, answers_alone);
        // Spot checks by hand: a correction to the same amount posts nothing; one account's
        // items see the ones before them.
        assert!(answers_together[4].1.is_none());
        let balances: Vec<_> = answers_together.iter().map(|(a, _)| a.clone().unwrap_or_default().balance).collect();
        assert_eq!(balances, ["100.00", "150.00", "110.00", "95.00", "95.00", "70.00", "20.00", "25.00", "100.00", "0.00"]);

        let batch = pb::RecordPaymentsRequest { items: payments(&ids_together, &claims) };
        let results = together.record_payments(batch.clone()).await?.into_inner().results;
        // Redelivered: the answers stored with the keys written together, nothing written twice.
        let again = together.record_payments(batch).await?.into_inner().results;
        assert_eq!(again, results);
        let mut paid_together = Vec::new();
        for r in results {
            match r.outcome {
                Some(PayOutcome::Response(response)) => paid_together.push(response),
                other => anyhow::bail!("expected a response, got {other:?}"),
            }
        }
        let mut paid_alone = Vec::new();
        for item in payments(&ids_alone, &claims) {
            paid_alone.push(alone.record_payment(item).await?.into_inner());
        }
        let same = |answers: Vec<pb::RecordPaymentResponse>| -> Vec<_> {
            answers
                .into_iter()
                .map(|a| (same_account(a.account), a.entry.map(same_entry), a.installments_paid, a.agency_fee))
                .collect()
        };
        let (paid_together, paid_alone) = (same(paid_together), same(paid_alone));
        assert_eq!(paid_together, paid_alone);
        let balances: Vec<_> = paid_together.iter().map(|(a, ..)| a.clone().unwrap_or_default().balance).collect();
        assert_eq!(balances, ["65.00", "20.00", "90.00", "-80.00", "-12.50", "-5.00", "-81.00"]);
        // The named claim took what it owed (35.00), the rest a credit; then the oldest claim.
        let ar = |i: usize| -> Vec<(String, String)> {
            paid_together[i].1.clone().unwrap_or_default().postings.into_iter()
                .filter(|p| p.ledger_account == "PATIENT_AR")
                .map(|p| (p.claim_id, p.amount))
                .collect()
        };
        assert_eq!(ar(1), [(claims[1].to_string(), "-35.00".to_owned()), (String::new(), "-10.00".to_owned())]);
        assert_eq!(ar(3), [(claims[0].to_string(), "-30.00".to_owned()), (String::new(), "-70.00".to_owned())]);

        // The ledgers and accounts read back alike, every entry balanced.
        for (t, a) in ids_together.iter().zip(&ids_alone) {
            let (ledger_together, ledger_alone) = (ledger(&mut together, t).await?, ledger(&mut alone, a).await?);
            assert_eq!(ledger_together, ledger_alone);
            assert!(!ledger_together.is_empty());
            for e in &ledger_together {
                let sum: rust_decimal::Decimal = e.postings.iter().map(|p| p.amount.parse::<rust_decimal::Decimal>().unwrap_or_default()).sum();
                assert!(sum.is_zero(), "{e:?}");
            }
            assert_eq!(account(&mut together, t).await?, account(&mut alone, a).await?);
        }
        Ok(())
    }

    async fn a_batch_larger_than_one_statement_is_written_whole(db: Database) -> anyhow::Result<()> {
        let (_server, mut c) = serve(db).await?;
        let mut ids = Vec::new();
        for i in 0..40 {
            ids.push(open(&mut c, &format!("pat-{i}")).await?);
        }
        let claim = ClaimId::new();
        // Three items per account, an account's items apart in the batch.
        let items = ["10.00", "20.00", "-5.00"]
            .iter()
            .enumerate()
            .flat_map(|(round, amount)| {
                ids.iter().enumerate().map(move |(i, id)| pr(&format!("pr-{round}-{i}"), id, &claim, amount))
            })
            .collect();
        let results = c.post_patient_responsibilities(pb::PostPatientResponsibilitiesRequest { items }).await?.into_inner().results;
        assert_eq!(results.len(), 120);
        for r in &results[80..] {
            assert_eq!(pr_response(r)?.account.as_ref().map(|a| a.balance.as_str()), Some("25.00"));
        }
        let items = (0..120).map(|n| payment(&format!("pay-{n}"), &ids[n % 40], "5.00")).collect();
        let results = c.record_payments(pb::RecordPaymentsRequest { items }).await?.into_inner().results;
        assert!(results.iter().all(|r| matches!(r.outcome, Some(PayOutcome::Response(_)))));
        for id in &ids {
            assert_eq!((balance(&mut c, id).await?, entry_count(&mut c, id).await?), ("10.00".into(), 6));
        }
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
