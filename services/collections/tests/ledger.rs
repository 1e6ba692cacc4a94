//! Money in and out of patient accounts through the generated gRPC client, on SQLite and, when
//! `MEDBILL_TEST_PG_URL` is set, on PostgreSQL: patient responsibility from remittance (with a
//! reversal and a corrected adjudication), self-pay bills, payments of patients and third
//! parties, refunds, write-offs, the ledger with its running balance, and the aging report.
//! Figures are worked out by hand in the comments.

use std::sync::Arc;

use medbill_collections::{CollectionsConfig, CollectionsService, CollectionsStore, open_store};
use medbill_domain::{ClaimId, Money, Rate};
use medbill_proto::collections::v1 as pb;
use medbill_proto::collections::v1::collections_service_client::CollectionsServiceClient;
use medbill_proto::common::v1::{AdjustmentGroup, CasAdjustment};
use medbill_runtime::client::TracedChannel;
use medbill_storage::Database;
use medbill_testkit::{Caller, TENANT_A, TestServer};
use tonic::Code;

type Client = CollectionsServiceClient<TracedChannel>;

async fn serve_with(
    db: Database,
    config: CollectionsConfig,
) -> anyhow::Result<(TestServer, Arc<dyn CollectionsStore>)> {
    let store = open_store(db).await?;
    let service = CollectionsService::with_config(store.clone(), config);
    let routes = tonic::service::Routes::new(service.into_server());
    Ok((TestServer::start(routes).await, store))
}

async fn serve(db: Database) -> anyhow::Result<(TestServer, Arc<dyn CollectionsStore>)> {
    serve_with(db, CollectionsConfig::default()).await
}

fn client(server: &TestServer, caller: Caller) -> Client {
    CollectionsServiceClient::new(server.channel(caller))
}

fn pr_line(reason: &str, amount: &str) -> CasAdjustment {
    CasAdjustment {
        group: AdjustmentGroup::Pr as i32,
        reason: reason.into(),
        amount: amount.into(),
        ..Default::default()
    }
}

fn pr(
    key: &str,
    patient: &str,
    claim: &ClaimId,
    amount: &str,
) -> pb::PostPatientResponsibilityRequest {
    pb::PostPatientResponsibilityRequest {
        idempotency_key: key.into(),
        patient_ref: patient.into(),
        claim_id: claim.to_string(),
        amount: amount.into(),
        service_date: "2026-03-02".into(),
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

fn refund(key: &str, account: &str, amount: &str) -> pb::IssueRefundRequest {
    pb::IssueRefundRequest {
        idempotency_key: key.into(),
        account_id: account.into(),
        amount: amount.into(),
        method: pb::PaymentMethod::Check as i32,
        reason: "overpayment".into(),
        reference: String::new(),
    }
}

fn write_off(
    key: &str,
    account: &str,
    amount: &str,
    kind: pb::WriteOffKind,
) -> pb::WriteOffRequest {
    pb::WriteOffRequest {
        idempotency_key: key.into(),
        account_id: account.into(),
        amount: amount.into(),
        kind: kind as i32,
        reason: "policy".into(),
    }
}

async fn account(c: &mut Client, id: &str) -> anyhow::Result<pb::Account> {
    c.get_account(pb::GetAccountRequest {
        id: id.into(),
        include_aging: true,
    })
    .await?
    .into_inner()
    .account
    .ok_or_else(|| anyhow::anyhow!("no account"))
}

async fn ledger(c: &mut Client, id: &str) -> anyhow::Result<Vec<pb::JournalEntry>> {
    Ok(c.list_ledger_entries(pb::ListLedgerEntriesRequest {
        account_id: id.into(),
        page_size: 500,
        ..Default::default()
    })
    .await?
    .into_inner()
    .entries)
}

/// The PATIENT_AR postings of an entry as (claim, amount).
fn ar_legs(entry: &pb::JournalEntry) -> Vec<(String, String)> {
    entry
        .postings
        .iter()
        .filter(|p| p.ledger_account == "PATIENT_AR")
        .map(|p| (p.claim_id.clone(), p.amount.clone()))
        .collect()
}

fn assert_invalid(status: &tonic::Status, field: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains(field),
        "message should name {field}: {}",
        status.message()
    );
}

fn assert_precondition(status: &tonic::Status, mentions: &[&str]) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    for m in mentions {
        assert!(
            status.message().contains(m),
            "message should mention {m}: {}",
            status.message()
        );
    }
}

/// Posts a balanced PATIENT_AR / INSURANCE_AR entry dated `days_ago` days before today (noon
/// UTC) straight into the tables, as an older ledger would hold it.
async fn backdated_charge(
    db: &Database,
    account: &str,
    days_ago: i64,
    cents: i64,
) -> anyhow::Result<()> {
    let day = chrono::Utc::now().date_naive() - chrono::Duration::days(days_ago);
    let at = day
        .and_hms_opt(12, 0, 0)
        .map(|t| t.and_utc().timestamp_micros())
        .unwrap_or_default();
    let entry = uuid::Uuid::now_v7().to_string();
    // One transaction: the postings precede their entry (deferred foreign key, see the migrations).
    let mut tx = db.begin().await?;
    for (line, ledger, amount) in [(1_i64, "PATIENT_AR", cents), (2, "INSURANCE_AR", -cents)] {
        medbill_storage::with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO postings (tenant_id, entry_id, line_no, ledger_account, amount_cents, \
                 account_id, posted_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(TENANT_A)
            .bind(&entry)
            .bind(line)
            .bind(ledger)
            .bind(amount)
            .bind(account)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        });
    }
    medbill_storage::with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO journal_entries (tenant_id, id, account_id, kind, memo, posted_at) \
             VALUES ($1, $2, $3, 'PATIENT_RESPONSIBILITY', 'older', $4)",
        )
        .bind(TENANT_A)
        .bind(&entry)
        .bind(account)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    });
    tx.commit().await?;
    Ok(())
}

medbill_storage::conformance_tests! {
    namespace = "collections";

    async fn money_moves_in_and_out_with_hand_checked_balances(db: Database) -> anyhow::Result<()> {
        let (server, _) = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        let (claim_a, claim_b, claim_c) = (ClaimId::new(), ClaimId::new(), ClaimId::new());

        // PR 150.00 on claim A (deductible 100.00 + coinsurance 50.00): the account is opened.
        let mut first = pr("era-1-clp-1", "pat-1", &claim_a, "150.00");
        first.adjustments = vec![pr_line("1", "100.00"), pr_line("2", "50.00")];
        let posted = a.post_patient_responsibility(first.clone()).await?.into_inner();
        let acc = posted.account.clone().expect("account");
        assert_eq!((acc.balance.as_str(), acc.amount_due.as_str(), acc.credit_balance.as_str()), ("150.00", "150.00", "0.00"));
        let entry = posted.entry.clone().expect("entry");
        assert_eq!(entry.kind, pb::EntryKind::PatientResponsibility as i32);
        assert_eq!(entry.balance_change, "150.00");
        assert_eq!(ar_legs(&entry), vec![(claim_a.to_string(), "150.00".to_owned())]);
        // Applied once per key; a reused key with another request is refused.
        let again = a.post_patient_responsibility(first.clone()).await?.into_inner();
        assert_eq!(again, posted, "the replay answers the first response");
        let mut changed = first.clone();
        changed.amount = "151.00".into();
        changed.adjustments.clear();
        assert_eq!(a.post_patient_responsibility(changed).await.expect_err("reused").code(), Code::AlreadyExists);

        // Copay 40.00 on claim B goes to the same account: 190.00.
        let mut copay = pr("era-1-clp-2", "pat-1", &claim_b, "40.00");
        copay.adjustments = vec![pr_line("3", "40.00")];
        let acc = a.post_patient_responsibility(copay).await?.into_inner().account.expect("account");
        assert_eq!((acc.id.as_str(), acc.balance.as_str()), (entry.account_id.as_str(), "190.00"));
        let id = acc.id.clone();

        // A card payment of 170.00 pays claim A (150.00, oldest) then 20.00 of claim B: 20.00 left.
        let paid = a.record_payment(payment("pay-1", &id, "170.00")).await?.into_inner();
        let entry = paid.entry.expect("entry");
        assert_eq!(ar_legs(&entry), vec![(claim_a.to_string(), "-150.00".to_owned()), (claim_b.to_string(), "-20.00".to_owned())]);
        assert_eq!(entry.payer_type, pb::PayerType::Patient as i32);
        assert_eq!(paid.account.expect("account").balance, "20.00");

        // The payer reverses claim B (-40.00): the patient has a 20.00 credit.
        let reversal = a.post_patient_responsibility(pr("era-2-clp-1", "pat-1", &claim_b, "-40.00")).await?.into_inner();
        assert_eq!(reversal.entry.expect("entry").kind, pb::EntryKind::Reversal as i32);
        let acc = reversal.account.expect("account");
        assert_eq!((acc.balance.as_str(), acc.credit_balance.as_str(), acc.amount_due.as_str()), ("-20.00", "20.00", "0.00"));
        // Reversing more than the claim holds (0.00 now) is refused and writes nothing.
        let status = a.post_patient_responsibility(pr("era-2-clp-9", "pat-1", &claim_b, "-1.00")).await.expect_err("too much");
        assert_precondition(&status, &["1.00", "0.00"]);

        // The corrected adjudication says claim B's PR is 30.00: +30.00, balance 10.00.
        let mut corrected = pr("era-2-clp-2", "pat-1", &claim_b, "30.00");
        corrected.corrected = true;
        let fixed = a.post_patient_responsibility(corrected.clone()).await?.into_inner();
        assert_eq!(fixed.entry.expect("entry").balance_change, "30.00");
        assert_eq!(fixed.account.expect("account").balance, "10.00");
        // The same correction again (another ERA) changes nothing.
        corrected.idempotency_key = "era-3-clp-1".into();
        let same = a.post_patient_responsibility(corrected).await?.into_inner();
        assert!(same.entry.is_none());
        assert_eq!(same.account.expect("account").balance, "10.00");

        // An auto insurer pays 25.00 by ACH for claim B: 10.00 to claim B, 15.00 credit.
        let mut third = payment("pay-2", &id, "25.00");
        third.method = pb::PaymentMethod::Ach as i32;
        third.reference = "ACH-TRACE-778".into();
        third.payer_type = pb::PayerType::AutoInsurer as i32;
        third.payer_ref = "ins-9".into();
        third.claim_id = claim_b.to_string();
        let paid = a.record_payment(third).await?.into_inner();
        let entry = paid.entry.expect("entry");
        assert_eq!(entry.payer_type, pb::PayerType::AutoInsurer as i32);
        assert_eq!(ar_legs(&entry), vec![(claim_b.to_string(), "-10.00".to_owned()), (String::new(), "-15.00".to_owned())]);
        assert_eq!(paid.account.expect("account").credit_balance, "15.00");

        // A refund above the credit names both amounts and writes nothing; 15.00 by check works.
        let status = a.issue_refund(refund("ref-1", &id, "20.00")).await.expect_err("above credit");
        assert_precondition(&status, &["20.00", "15.00"]);
        let refunded = a.issue_refund(refund("ref-1", &id, "15.00")).await?.into_inner();
        let r = refunded.refund.expect("refund");
        assert_eq!((r.amount.as_str(), r.status), ("15.00", pb::RefundStatus::Pending as i32));
        assert_eq!(refunded.account.expect("account").balance, "0.00");

        // Write-offs: claim C's 60.00; 70.00 is too much; 10.00 prompt-pay; the rest bad debt.
        a.post_patient_responsibility(pr("era-4-clp-1", "pat-1", &claim_c, "60.00")).await?;
        let status = a.write_off(write_off("wo-1", &id, "70.00", pb::WriteOffKind::SmallBalance)).await.expect_err("above balance");
        assert_precondition(&status, &["70.00", "60.00"]);
        let wo = a.write_off(write_off("wo-1", &id, "10.00", pb::WriteOffKind::PromptPayDiscount)).await?.into_inner();
        let entry = wo.entry.expect("entry");
        assert!(entry.postings.iter().any(|p| p.ledger_account == "PROMPT_PAY_DISCOUNT" && p.amount == "10.00"));
        assert_eq!(wo.account.expect("account").balance, "50.00");
        let wo = a.write_off(write_off("wo-2", &id, "", pb::WriteOffKind::BadDebt)).await?.into_inner();
        assert_eq!(wo.entry.expect("entry").balance_change, "-50.00");
        assert_eq!(wo.account.expect("account").balance, "0.00");
        let status = a.write_off(write_off("wo-3", &id, "", pb::WriteOffKind::BadDebt)).await.expect_err("nothing owed");
        assert_precondition(&status, &["owes nothing"]);

        // The ledger: every entry, its source and the running balance.
        let entries = ledger(&mut a, &id).await?;
        let running: Vec<&str> = entries.iter().map(|e| e.running_balance.as_str()).collect();
        assert_eq!(running, ["150.00", "190.00", "20.00", "-20.00", "10.00", "-15.00", "0.00", "60.00", "50.00", "0.00"]);
        let payments: Vec<&pb::JournalEntry> = entries.iter().filter(|e| e.kind == pb::EntryKind::Payment as i32).collect();
        assert_eq!(payments.len(), 2);
        assert!(payments.iter().all(|e| !e.source_ref.is_empty()), "a payment names its record");
        assert_eq!(entries.iter().find(|e| e.kind == pb::EntryKind::Refund as i32).map(|e| e.source_ref.clone()), Some(r.id.clone()));
        // Filtered by kind and paged, the running balance stays the account's.
        let page = a.list_ledger_entries(pb::ListLedgerEntriesRequest {
            account_id: id.clone(),
            kind: pb::EntryKind::Payment as i32,
            page_size: 1,
            ..Default::default()
        }).await?.into_inner();
        assert_eq!(page.entries.iter().map(|e| e.running_balance.as_str()).collect::<Vec<_>>(), ["20.00"]);
        let next = a.list_ledger_entries(pb::ListLedgerEntriesRequest {
            account_id: id.clone(),
            kind: pb::EntryKind::Payment as i32,
            page_size: 1,
            page_token: page.next_page_token.clone(),
        }).await?.into_inner();
        assert_eq!(next.entries.iter().map(|e| e.running_balance.as_str()).collect::<Vec<_>>(), ["-15.00"]);
        assert_eq!(account(&mut a, &id).await?.balance, "0.00");
        Ok(())
    }

    async fn self_pay_encounters_are_billed_with_the_discount(db: Database) -> anyhow::Result<()> {
        let config = CollectionsConfig { self_pay_discount: Rate::parse("0.25")?, ..Default::default() };
        let (server, _) = serve_with(db, config).await?;
        let mut a = client(&server, Caller::TenantA);
        let claim = ClaimId::new();
        let request = pb::BillSelfPayRequest {
            idempotency_key: "sp-1".into(),
            patient_ref: "pat-sp".into(),
            claim_id: claim.to_string(),
            service_date: "2026-05-04".into(),
            charges: vec![
                pb::SelfPayCharge { procedure_code: "99213".into(), charge: "200.00".into(), units: 1 },
                pb::SelfPayCharge { procedure_code: "36415".into(), charge: "33.33".into(), units: 1 },
            ],
            ..Default::default()
        };
        // 233.33 gross; 25% is 58.3325, rounded 58.33; the patient owes 175.00.
        let bill = a.bill_self_pay(request.clone()).await?.into_inner();
        assert_eq!((bill.gross_charges.as_str(), bill.discount.as_str(), bill.patient_amount.as_str()), ("233.33", "58.33", "175.00"));
        let entry = bill.entry.clone().expect("entry");
        let legs: Vec<(&str, &str)> = entry.postings.iter().map(|p| (p.ledger_account.as_str(), p.amount.as_str())).collect();
        assert_eq!(legs, [("PATIENT_AR", "175.00"), ("SELF_PAY_DISCOUNT", "58.33"), ("PATIENT_SERVICE_REVENUE", "-233.33")]);
        assert_eq!(bill.account.clone().expect("account").balance, "175.00");
        assert_eq!(a.bill_self_pay(request.clone()).await?.into_inner(), bill, "a replay bills once");
        // The same claim under another key is refused: one bill per encounter.
        let mut twice = request.clone();
        twice.idempotency_key = "sp-2".into();
        let status = a.bill_self_pay(twice).await.expect_err("billed already");
        assert_precondition(&status, &[&claim.to_string()]);
        let mut bad = request.clone();
        bad.idempotency_key = "sp-3".into();
        bad.charges[1].charge = "-1.00".into();
        assert_invalid(&a.bill_self_pay(bad).await.expect_err("negative"), "charges[1].charge");
        let mut bad = request;
        bad.idempotency_key = "sp-4".into();
        bad.charges.clear();
        assert_invalid(&a.bill_self_pay(bad).await.expect_err("no lines"), "charges");
        let id = bill.account.expect("account").id;
        assert_eq!(ledger(&mut a, &id).await?.len(), 1, "nothing else written");
        Ok(())
    }

    async fn bad_input_is_named_and_leaves_nothing_behind(db: Database) -> anyhow::Result<()> {
        let (server, _) = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        let claim = ClaimId::new();
        let acc = a.post_patient_responsibility(pr("pr-1", "pat-2", &claim, "80.00")).await?.into_inner().account.expect("account");
        let id = acc.id;

        for (amount, field) in [("-5.00", "amount"), ("0.00", "amount"), ("", "amount"), ("1.005", "amount")] {
            let status = a.record_payment(payment("bad-pay", &id, amount)).await.expect_err("bad amount");
            assert_invalid(&status, field);
        }
        let mut no_method = payment("bad-pay", &id, "5.00");
        no_method.method = 0;
        assert_invalid(&a.record_payment(no_method).await.expect_err("method"), "method");
        let mut check = payment("bad-pay", &id, "5.00");
        check.method = pb::PaymentMethod::Check as i32;
        assert_invalid(&a.record_payment(check).await.expect_err("reference"), "reference");
        let mut unknown = payment("bad-pay", &id, "5.00");
        unknown.payer_type = 99;
        assert_invalid(&a.record_payment(unknown).await.expect_err("payer type"), "payer_type");
        assert_invalid(&a.issue_refund(refund("bad-ref", &id, "0")).await.expect_err("zero"), "amount");
        let mut no_reason = refund("bad-ref", &id, "1.00");
        no_reason.reason.clear();
        assert_invalid(&a.issue_refund(no_reason).await.expect_err("reason"), "reason");
        assert_invalid(&a.write_off(write_off("bad-wo", &id, "5.00", pb::WriteOffKind::Unspecified)).await.expect_err("kind"), "kind");
        assert_invalid(&a.write_off(write_off("bad-wo", &id, "-5.00", pb::WriteOffKind::BadDebt)).await.expect_err("neg"), "amount");
        let mut sums = pr("bad-pr", "pat-2", &claim, "80.00");
        sums.adjustments = vec![pr_line("1", "70.00")];
        assert_invalid(&a.post_patient_responsibility(sums).await.expect_err("sum"), "adjustments");
        let mut co = pr("bad-pr", "pat-2", &claim, "80.00");
        co.adjustments = vec![CasAdjustment { group: AdjustmentGroup::Co as i32, ..pr_line("45", "80.00") }];
        assert_invalid(&a.post_patient_responsibility(co).await.expect_err("group"), "adjustments[0].group");
        let mut nobody = pr("bad-pr", "", &claim, "80.00");
        nobody.patient_ref.clear();
        assert_invalid(&a.post_patient_responsibility(nobody).await.expect_err("who"), "patient_ref");
        let mut corrected = pr("bad-pr", "pat-2", &claim, "80.00");
        corrected.claim_id.clear();
        corrected.corrected = true;
        assert_invalid(&a.post_patient_responsibility(corrected).await.expect_err("claim"), "claim_id");
        assert_invalid(&a.post_patient_responsibility(pr("bad-pr", "pat-2", &claim, "0")).await.expect_err("zero"), "amount");
        let mut date = pr("bad-pr", "pat-2", &claim, "1.00");
        date.service_date = "2026-02-30".into();
        assert_invalid(&a.post_patient_responsibility(date).await.expect_err("date"), "service_date");
        let status = a.write_off(write_off("bad-wo", &id, "80.01", pb::WriteOffKind::BadDebt)).await.expect_err("above");
        assert_precondition(&status, &["80.01", "80.00"]);

        // Nothing of it was written, and the refused keys are free for a corrected request.
        assert_eq!(ledger(&mut a, &id).await?.len(), 1);
        assert_eq!(account(&mut a, &id).await?.balance, "80.00");
        a.record_payment(payment("bad-pay", &id, "5.00")).await?;
        a.write_off(write_off("bad-wo", &id, "75.00", pb::WriteOffKind::CharityCare)).await?;
        assert_eq!(account(&mut a, &id).await?.balance, "0.00");
        Ok(())
    }

    async fn another_tenants_account_is_not_found(db: Database) -> anyhow::Result<()> {
        let (server, _) = serve(db).await?;
        let mut a = client(&server, Caller::TenantA);
        let mut b = client(&server, Caller::TenantB);
        let claim = ClaimId::new();
        let id = a.post_patient_responsibility(pr("pr-1", "pat-3", &claim, "30.00")).await?.into_inner().account.expect("account").id;
        a.record_payment(payment("pay-1", &id, "50.00")).await?;

        let mut to_a = pr("pr-b", "", &claim, "5.00");
        to_a.account_id = id.clone();
        let statuses = [
            b.record_payment(payment("pay-b", &id, "1.00")).await.map(|_| ()),
            b.issue_refund(refund("ref-b", &id, "1.00")).await.map(|_| ()),
            b.write_off(write_off("wo-b", &id, "1.00", pb::WriteOffKind::BadDebt)).await.map(|_| ()),
            b.post_patient_responsibility(to_a).await.map(|_| ()),
            b.list_ledger_entries(pb::ListLedgerEntriesRequest { account_id: id.clone(), ..Default::default() }).await.map(|_| ()),
        ];
        for status in statuses {
            assert_eq!(status.expect_err("another tenant's").code(), Code::NotFound);
        }
        // Tenant B's report sees none of it; tenant A's is unchanged by B's attempts.
        let report = b.aging_report(pb::AgingReportRequest::default()).await?.into_inner();
        assert_eq!(report.account_count, 0);
        assert_eq!(account(&mut a, &id).await?.balance, "-20.00");
        assert_eq!(ledger(&mut a, &id).await?.len(), 2);
        Ok(())
    }

    async fn concurrent_calls_keep_the_balance_rules(db: Database) -> anyhow::Result<()> {
        let (server, _) = serve(db).await?;
        let a = client(&server, Caller::TenantA);
        // Eight first postings for a new patient at once open one account.
        let mut calls = Vec::new();
        for i in 0..8 {
            let mut c = a.clone();
            let claim = ClaimId::new();
            calls.push(tokio::spawn(async move {
                c.post_patient_responsibility(pr(&format!("first-{i}"), "pat-new", &claim, "10.00")).await
            }));
        }
        let mut accounts = std::collections::BTreeSet::new();
        for call in calls {
            accounts.insert(call.await??.into_inner().account.expect("account").id);
        }
        assert_eq!(accounts.len(), 1, "one account for the patient: {accounts:?}");
        let id = accounts.into_iter().next().expect("account");
        let mut a = a;
        assert_eq!(account(&mut a, &id).await?.balance, "80.00");
        // A 130.00 payment leaves a 50.00 credit; ten refunds of 10.00 at once: five go through.
        a.record_payment(payment("pay", &id, "130.00")).await?;
        let mut calls = Vec::new();
        for i in 0..10 {
            let mut c = a.clone();
            let id = id.clone();
            calls.push(tokio::spawn(async move { c.issue_refund(refund(&format!("ref-{i}"), &id, "10.00")).await }));
        }
        let mut refunded = 0;
        for call in calls {
            match call.await? {
                Ok(_) => refunded += 1,
                Err(status) => assert_precondition(&status, &["10.00"]),
            }
        }
        assert_eq!(refunded, 5);
        assert_eq!(account(&mut a, &id).await?.balance, "0.00");
        Ok(())
    }

    async fn the_aging_report_adds_up_to_the_accounts(db: Database) -> anyhow::Result<()> {
        let (server, _) = serve(db.clone()).await?;
        let mut a = client(&server, Caller::TenantA);
        let mut ids = Vec::new();
        for patient in ["pat-x", "pat-y", "pat-z", "pat-paid"] {
            let claim = ClaimId::new();
            let acc = a.post_patient_responsibility(pr(&format!("pr-{patient}"), patient, &claim, "10.00")).await?.into_inner();
            ids.push(acc.account.expect("account").id);
        }
        // x: 100.00 at 150 days, 50.00 at 75 days, 10.00 today; a payment of 120.00 pays the
        // 100.00 and 20.00 of the 50.00: 30.00 in 61-90, 10.00 in 0-30.
        backdated_charge(&db, &ids[0], 150, 10_000).await?;
        backdated_charge(&db, &ids[0], 75, 5_000).await?;
        a.record_payment(payment("pay-x", &ids[0], "120.00")).await?;
        // y: 40.00 at 31 days, 20.00 at 120 days, 5.00 at 121 days, 10.00 today.
        backdated_charge(&db, &ids[1], 31, 4_000).await?;
        backdated_charge(&db, &ids[1], 120, 2_000).await?;
        backdated_charge(&db, &ids[1], 121, 500).await?;
        // z: 10.00 today only. paid: 10.00 today, paid in full (left out).
        a.record_payment(payment("pay-paid", &ids[3], "10.00")).await?;

        let report = a.aging_report(pb::AgingReportRequest { page_size: 2, ..Default::default() }).await?.into_inner();
        let totals = report.totals.clone().expect("totals");
        let buckets = |b: &pb::AgingBuckets| [b.days_0_30.clone(), b.days_31_60.clone(), b.days_61_90.clone(), b.days_91_120.clone(), b.days_over_120.clone(), b.total.clone()];
        assert_eq!(buckets(&totals), ["30.00", "40.00", "30.00", "20.00", "5.00", "125.00"].map(String::from));
        assert_eq!(report.account_count, 3);
        assert_eq!(report.rows.len(), 2);
        let second = a.aging_report(pb::AgingReportRequest { page_size: 2, page_token: report.next_page_token.clone(), ..Default::default() }).await?.into_inner();
        assert_eq!(second.totals, report.totals, "totals cover every account on every page");
        assert!(second.next_page_token.is_empty());
        let rows: Vec<pb::AgingReportRow> = report.rows.into_iter().chain(second.rows).collect();
        assert_eq!(rows.iter().map(|r| r.account_id.as_str()).collect::<Vec<_>>(), ids[..3].iter().map(String::as_str).collect::<Vec<_>>());

        // Each row is the account's own aging from GetAccount, and they sum to the totals.
        let mut sum = [0_i64; 6];
        for row in &rows {
            let got = account(&mut a, &row.account_id).await?.aging.expect("aging");
            assert_eq!(row.aging.as_ref(), Some(&got), "account {}", row.account_id);
            for (s, v) in sum.iter_mut().zip(buckets(&got)) {
                *s += Money::parse(&v)?.to_minor_units()?;
            }
        }
        assert_eq!(sum, [3_000, 4_000, 3_000, 2_000, 500, 12_500]);
        assert_eq!(buckets(&rows[0].aging.clone().expect("x")), ["10.00", "0.00", "30.00", "0.00", "0.00", "40.00"].map(String::from));

        // Only accounts owing 91 days or more: y alone.
        let old = a.aging_report(pb::AgingReportRequest { min_bucket: pb::AgingBucket::Days91120 as i32, ..Default::default() }).await?.into_inner();
        assert_eq!(old.rows.iter().map(|r| r.account_id.as_str()).collect::<Vec<_>>(), [ids[1].as_str()]);
        assert_eq!(old.totals.expect("totals").total, "75.00");
        // As of 100 days ago: x's 150-day charge (then 50 days old) and y's 120- and 121-day
        // charges (then 20 and 21 days old); nothing was paid yet.
        let past = (chrono::Utc::now().date_naive() - chrono::Duration::days(100)).to_string();
        let then = a.aging_report(pb::AgingReportRequest { as_of_date: past, ..Default::default() }).await?.into_inner();
        assert_eq!(buckets(&then.totals.expect("totals")), ["25.00", "100.00", "0.00", "0.00", "0.00", "125.00"].map(String::from));
        assert_invalid(&a.aging_report(pb::AgingReportRequest { as_of_date: "yesterday".into(), ..Default::default() }).await.expect_err("date"), "as_of_date");
        Ok(())
    }
}
