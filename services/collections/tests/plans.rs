//! Payment plans through the generated gRPC client, on SQLite and, when `MEDBILL_TEST_PG_URL` is
//! set, on PostgreSQL: a plan covering the balance, payments filling installments, a write-off
//! cutting the schedule back to the balance, cancel and re-create, a plan paid off.

use chrono::NaiveDate;
use medbill_collections::{Clock, CollectionsService, open_store};
use medbill_domain::ClaimId;
use medbill_proto::collections::v1 as pb;
use medbill_proto::collections::v1::collections_service_client::CollectionsServiceClient;
use medbill_proto::collections::v1::create_payment_plan_request::Terms;
use medbill_runtime::client::TracedChannel;
use medbill_storage::Database;
use medbill_testkit::{Caller, TestServer};
use tonic::Code;

type Client = CollectionsServiceClient<TracedChannel>;

fn today_plus(n: u64) -> NaiveDate {
    chrono::Utc::now().date_naive() + chrono::Days::new(n)
}

async fn serve(db: Database) -> anyhow::Result<TestServer> {
    let store = open_store(db).await?;
    let service = CollectionsService::new(store).with_clock(Clock::fixed(today_plus(0)));
    Ok(TestServer::start(tonic::service::Routes::new(service.into_server())).await)
}

async fn owe(
    c: &mut Client,
    key: &str,
    patient: &str,
    amount: &str,
) -> anyhow::Result<pb::Account> {
    let req = pb::PostPatientResponsibilityRequest {
        idempotency_key: key.into(),
        patient_ref: patient.into(),
        claim_id: ClaimId::new().to_string(),
        amount: amount.into(),
        ..Default::default()
    };
    Ok(c.post_patient_responsibility(req)
        .await?
        .into_inner()
        .account
        .unwrap_or_default())
}

fn plan_request(key: &str, account: &str, terms: Terms) -> pb::CreatePaymentPlanRequest {
    pb::CreatePaymentPlanRequest {
        idempotency_key: key.into(),
        account_id: account.into(),
        terms: Some(terms),
        frequency: pb::InstallmentFrequency::Monthly as i32,
        first_due_date: today_plus(10).to_string(),
        ..Default::default()
    }
}

fn pay(key: &str, account: &str, amount: &str) -> pb::RecordPaymentRequest {
    pb::RecordPaymentRequest {
        idempotency_key: key.into(),
        account_id: account.into(),
        amount: amount.into(),
        method: pb::PaymentMethod::Card as i32,
        ..Default::default()
    }
}

async fn plan(c: &mut Client, id: &str) -> anyhow::Result<pb::PaymentPlan> {
    Ok(
        c.get_payment_plan(pb::GetPaymentPlanRequest { id: id.into() })
            .await?
            .into_inner()
            .plan
            .unwrap_or_default(),
    )
}

async fn account(c: &mut Client, id: &str) -> anyhow::Result<pb::Account> {
    Ok(c.get_account(pb::GetAccountRequest {
        id: id.into(),
        include_aging: false,
    })
    .await?
    .into_inner()
    .account
    .unwrap_or_default())
}

medbill_storage::conformance_tests! {
    namespace = "collections";

    async fn a_plan_follows_the_ledger_from_creation_to_payoff(db: Database) -> anyhow::Result<()> {
        let server = serve(db).await?;
        let mut c = CollectionsServiceClient::new(server.channel(Caller::TenantA));
        let acct = owe(&mut c, "pr-1", "pat-1", "300.00").await?;

        // Refusals write nothing: too small installments, a total short of the balance.
        let small = c.create_payment_plan(plan_request("p-small", &acct.id, Terms::InstallmentCount(20))).await.err();
        let small = small.ok_or_else(|| anyhow::anyhow!("15.00 installments accepted"))?;
        assert_eq!(small.code(), Code::InvalidArgument);
        assert!(small.message().contains("installment_count"), "{small:?}");
        let mut short = plan_request("p-short", &acct.id, Terms::InstallmentCount(3));
        short.total_amount = "200.00".into();
        let short = c.create_payment_plan(short).await.err().ok_or_else(|| anyhow::anyhow!("short plan accepted"))?;
        assert_eq!(short.code(), Code::FailedPrecondition);
        assert!(short.message().contains("total_amount 200.00") && short.message().contains("300.00"), "{short:?}");

        let created = c.create_payment_plan(plan_request("p-1", &acct.id, Terms::InstallmentCount(3))).await?.into_inner();
        let p = created.plan.unwrap_or_default();
        assert_eq!(p.installments.iter().map(|i| i.amount.as_str()).collect::<Vec<_>>(), ["100.00", "100.00", "100.00"]);
        assert_eq!(p.installments[1].due_date, (today_plus(10) + chrono::Months::new(1)).to_string());
        assert_eq!(p.status, pb::PaymentPlanStatus::Active as i32);
        let a = created.account.unwrap_or_default();
        assert_eq!((a.status, a.payment_plan_id.as_str(), a.payment_plan_status.as_str()),
            (pb::AccountStatus::PaymentPlan as i32, p.id.as_str(), "ACTIVE"));
        assert_eq!(account(&mut c, &acct.id).await?.payment_plan_id, p.id);
        let twice = c.create_payment_plan(plan_request("p-2", &acct.id, Terms::InstallmentCount(2))).await.err();
        assert_eq!(twice.map(|e| e.code()), Some(Code::FailedPrecondition), "one live plan per account");

        // 150.00 pays the first installment and half the second.
        let paid = c.record_payment(pay("pay-1", &acct.id, "150.00")).await?.into_inner();
        let touched: Vec<(u32, &str)> = paid.installments_paid.iter().map(|i| (i.sequence, i.paid_amount.as_str())).collect();
        assert_eq!(touched, [(1, "100.00"), (2, "50.00")]);
        assert_eq!(paid.installments_paid[1].status, pb::InstallmentStatus::PartiallyPaid as i32);
        assert_eq!(plan(&mut c, &p.id).await?.remaining_amount, "150.00");

        // A 50.00 write-off leaves 100.00 owed: the schedule is cut back from its end to match.
        c.write_off(pb::WriteOffRequest {
            idempotency_key: "wo-1".into(),
            account_id: acct.id.clone(),
            amount: "50.00".into(),
            kind: pb::WriteOffKind::Administrative as i32,
            reason: "service recovery".into(),
        }).await?;
        let cut = plan(&mut c, &p.id).await?;
        assert_eq!(cut.remaining_amount, "100.00");
        assert_eq!(cut.installments[2].amount, "50.00");
        assert_eq!(account(&mut c, &acct.id).await?.balance, "100.00");

        // Cancel, then a new plan on installment amount, paid off.
        let cancel = pb::CancelPaymentPlanRequest { idempotency_key: "c-1".into(), plan_id: p.id.clone(), reason: "patient asked".into() };
        let cancelled = c.cancel_payment_plan(cancel).await?.into_inner();
        assert_eq!(cancelled.plan.map(|p| p.status), Some(pb::PaymentPlanStatus::Cancelled as i32));
        let a = cancelled.account.unwrap_or_default();
        assert_eq!((a.status, a.payment_plan_id.as_str()), (pb::AccountStatus::Open as i32, ""));
        let again = pb::CancelPaymentPlanRequest { idempotency_key: "c-2".into(), plan_id: p.id.clone(), reason: "again".into() };
        assert_eq!(c.cancel_payment_plan(again).await.err().map(|e| e.code()), Some(Code::FailedPrecondition));

        let second = c.create_payment_plan(plan_request("p-3", &acct.id, Terms::InstallmentAmount("60.00".into()))).await?.into_inner();
        let p2 = second.plan.unwrap_or_default();
        assert_eq!(p2.installments.iter().map(|i| i.amount.as_str()).collect::<Vec<_>>(), ["60.00", "40.00"]);
        c.record_payment(pay("pay-2", &acct.id, "100.00")).await?;
        let done = plan(&mut c, &p2.id).await?;
        assert_eq!((done.status, done.remaining_amount.as_str()), (pb::PaymentPlanStatus::Completed as i32, "0.00"));
        let a = account(&mut c, &acct.id).await?;
        assert_eq!((a.status, a.payment_plan_id.as_str(), a.balance.as_str()), (pb::AccountStatus::Open as i32, "", "0.00"));

        // Another tenant sees no such plan.
        let mut b = CollectionsServiceClient::new(server.channel(Caller::TenantB));
        let missing = b.get_payment_plan(pb::GetPaymentPlanRequest { id: p2.id.clone() }).await.err();
        assert_eq!(missing.map(|e| e.code()), Some(Code::NotFound));
        Ok(())
    }
}
