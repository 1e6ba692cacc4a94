//! A patient account's collections story, told through the generated gRPC client over four
//! months: patient responsibility from an ERA, a copay, an insurer's reversal, a third-party
//! payment, a refund of a credit, a statement (PDF), a payment plan paid then missed, dunning
//! through its stages, the 501(r) guard refusing too early and allowing on time, an agency
//! placement with an agency collection and its fee, a recall, and an aging report that adds
//! up. The service's own tests run it on a fixed clock; the binary's on its training clock.

use chrono::NaiveDate;
use medbill_domain::{ClaimId, EraId, Money};
use medbill_proto::collections::v1 as pb;
use medbill_proto::collections::v1::collections_service_client::CollectionsServiceClient;
use medbill_proto::collections::v1::create_payment_plan_request::Terms;
use medbill_proto::common::v1::{AdjustmentGroup, CasAdjustment};
use medbill_runtime::client::TracedChannel;
use tonic::Code;

/// The collection agency the story places the account with (configure it with [`AGENCY_FEE_RATE`]).
pub const AGENCY: &str = "acme";
/// The fee rate the story expects of [`AGENCY`].
pub const AGENCY_FEE_RATE: &str = "0.30";

/// Runs the story against a collections service for one tenant with no accounts yet, whose
/// today is [`day`]`(0)` and moves when `set_today` says (the service's clock); [`AGENCY`] must
/// be configured with [`AGENCY_FEE_RATE`].
///
/// # Errors
/// The first call or check that fails.
pub async fn run(
    c: &mut Client,
    set_today: &(dyn Fn(NaiveDate) -> anyhow::Result<()> + Sync),
) -> anyhow::Result<()> {
    // Patient responsibility from an ERA: 1000.00 billed, 600.00 paid, 400.00 to the patient.
    let claim = ClaimId::new();
    let pr = pb::PostPatientResponsibilityRequest {
        idempotency_key: "era-1/clp-1".into(),
        patient_ref: "pat-1".into(),
        claim_id: claim.to_string(),
        era_id: EraId::new().to_string(),
        patient_control_number: "PCN-1".into(),
        amount: "400.00".into(),
        adjustments: vec![
            CasAdjustment {
                group: AdjustmentGroup::Pr as i32,
                reason: "1".into(),
                amount: "300.00".into(),
                ..Default::default()
            },
            CasAdjustment {
                group: AdjustmentGroup::Pr as i32,
                reason: "2".into(),
                amount: "100.00".into(),
                ..Default::default()
            },
        ],
        service_date: day(0).to_string(),
        total_charge: "1000.00".into(),
        payer_paid: "600.00".into(),
        ..Default::default()
    };
    let a = c
        .post_patient_responsibility(pr)
        .await?
        .into_inner()
        .account
        .unwrap_or_default();
    let id = a.id.clone();
    // A 25.00 copay, the insurer reversing 50.00 of it, 100.00 from the auto insurer.
    c.record_payment(pay("copay", &id, "25.00", pb::PayerType::Patient))
        .await?;
    c.post_patient_responsibility(pb::PostPatientResponsibilityRequest {
        idempotency_key: "era-2/clp-1".into(),
        account_id: id.clone(),
        claim_id: claim.to_string(),
        amount: "-50.00".into(),
        ..Default::default()
    })
    .await?;
    let third = c
        .record_payment(pay("auto", &id, "100.00", pb::PayerType::AutoInsurer))
        .await?
        .into_inner();
    assert_eq!(
        third.entry.map(|e| e.payer_type),
        Some(pb::PayerType::AutoInsurer as i32)
    );
    assert_eq!(account(c, &id).await?.balance, "225.00");

    // Another patient overpays and gets the credit back; no more than the credit.
    let b = c
        .post_patient_responsibility(pb::PostPatientResponsibilityRequest {
            idempotency_key: "era-3/clp-1".into(),
            patient_ref: "pat-2".into(),
            claim_id: ClaimId::new().to_string(),
            amount: "40.00".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .account
        .unwrap_or_default();
    c.record_payment(pay("over", &b.id, "60.00", pb::PayerType::Patient))
        .await?;
    let refund = |key: &str, amount: &str| pb::IssueRefundRequest {
        idempotency_key: key.into(),
        account_id: b.id.clone(),
        amount: amount.into(),
        method: pb::PaymentMethod::Check as i32,
        reason: "overpayment".into(),
        reference: String::new(),
    };
    let too_much = c.issue_refund(refund("r-0", "25.00")).await.err();
    assert_eq!(too_much.map(|e| e.code()), Some(Code::FailedPrecondition));
    c.issue_refund(refund("r-1", "20.00")).await?;
    assert_eq!(account(c, &b.id).await?.balance, "0.00");
    // A third patient owes 3.00: dunning writes it off.
    let small = c
        .post_patient_responsibility(pb::PostPatientResponsibilityRequest {
            idempotency_key: "era-4/clp-1".into(),
            patient_ref: "pat-3".into(),
            claim_id: ClaimId::new().to_string(),
            amount: "3.00".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .account
        .unwrap_or_default();

    // The first statement, as a PDF.
    let statements = c
        .generate_statements(pb::GenerateStatementsRequest {
            idempotency_key: "cycle-0".into(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .statements;
    let first = statements
        .iter()
        .find(|s| s.account_id == id)
        .ok_or_else(|| anyhow::anyhow!("no statement"))?;
    assert_eq!(first.amount_due, "225.00");
    let pdf = c
        .get_statement(pb::GetStatementRequest {
            id: first.id.clone(),
            include_pdf: true,
        })
        .await?
        .into_inner()
        .pdf;
    let doc = lopdf::Document::load_mem(&pdf)?;
    let text = doc.extract_text(&doc.get_pages().keys().copied().collect::<Vec<_>>())?;
    assert!(text.contains("Amount due: $225.00"), "{text}");

    // A plan of 3 x 75.00: the first installment paid, then missed ones.
    let mut plan_req = pb::CreatePaymentPlanRequest {
        idempotency_key: "plan-1".into(),
        account_id: id.clone(),
        terms: Some(Terms::InstallmentCount(3)),
        first_due_date: day(5).to_string(),
        ..Default::default()
    };
    let plan = c
        .create_payment_plan(plan_req.clone())
        .await?
        .into_inner()
        .plan
        .unwrap_or_default();
    let paid = c
        .record_payment(pay("inst-1", &id, "75.00", pb::PayerType::Patient))
        .await?
        .into_inner();
    assert_eq!(paid.installments_paid.len(), 1);
    assert_eq!(
        paid.installments_paid[0].status,
        pb::InstallmentStatus::Paid as i32
    );

    set_today(day(47))?;
    let run = dun(c, "dun-47", day(47)).await?;
    let held = action_of(&run, &id)?;
    assert!(
        held.blocked && held.blocked_reason.contains("DELINQUENT"),
        "{held:?}"
    );
    assert_eq!(
        action_of(&run, &small.id)?.action,
        pb::DunningActionKind::SmallBalanceWriteOff as i32
    );
    assert_eq!(account(c, &small.id).await?.balance, "0.00");
    let again = dun(c, "dun-47-again", day(47)).await?;
    assert!(
        action_of(&again, &id)?.reason.contains("already evaluated"),
        "one run per date"
    );

    set_today(day(78))?;
    let run = dun(c, "dun-78", day(78)).await?;
    let restarted = action_of(&run, &id)?;
    assert_eq!(
        restarted.action,
        pb::DunningActionKind::Statement as i32,
        "{restarted:?}"
    );
    let defaulted = c
        .get_payment_plan(pb::GetPaymentPlanRequest {
            id: plan.id.clone(),
        })
        .await?
        .into_inner()
        .plan
        .unwrap_or_default();
    assert_eq!(defaulted.status, pb::PaymentPlanStatus::Defaulted as i32);
    assert_eq!(defaulted.missed_installments, 2);
    let a = account(c, &id).await?;
    assert_eq!(
        (a.status, a.payment_plan_id.as_str()),
        (pb::AccountStatus::Open as i32, "")
    );

    // Dunning through its stages, one per run.
    set_today(day(79))?;
    assert_eq!(
        action_of(&dun(c, "dun-79", day(79)).await?, &id)?.action,
        pb::DunningActionKind::Reminder as i32
    );
    set_today(day(80))?;
    let notice = dun(c, "dun-80", day(80)).await?;
    let notice = action_of(&notice, &id)?;
    assert_eq!(notice.action, pb::DunningActionKind::FinalNotice as i32);
    let letter = c
        .get_statement(pb::GetStatementRequest {
            id: notice.statement_id.clone(),
            include_pdf: false,
        })
        .await?
        .into_inner()
        .statement
        .unwrap_or_default();
    assert!(
        letter
            .dunning_message
            .contains(&format!("on or after {}", day(120))),
        "{}",
        letter.dunning_message
    );
    set_today(day(85))?;
    assert_eq!(
        action_of(&dun(c, "dun-85", day(85)).await?, &id)?.action,
        pb::DunningActionKind::None as i32
    );
    set_today(day(90))?;
    let eligible = dun(c, "dun-90", day(90)).await?;
    assert_eq!(
        action_of(&eligible, &id)?.action,
        pb::DunningActionKind::AgencyEligible as i32
    );
    assert_eq!(account(c, &id).await?.dunning_stage, "pre-collection");

    // The 501(r) guard: too early at day 90 (120 days after the first statement).
    let early = c
        .place_with_agency(place("place-90", &id))
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("placed too early"))?;
    assert_eq!(early.code(), Code::FailedPrecondition);
    assert!(
        early.message().contains("120 days")
            && early
                .message()
                .contains(&format!("allowed from {}", day(120))),
        "{early:?}"
    );
    // A pending financial assistance application blocks it whatever the date.
    set_today(day(120))?;
    c.set_account_holds(holds("fa-on", &id, true)).await?;
    let pending = c
        .place_with_agency(place("place-120-fa", &id))
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("placed while FA pending"))?;
    assert!(
        pending
            .message()
            .contains("financial assistance application is pending"),
        "{pending:?}"
    );
    let blocked = dun(c, "dun-120", day(120)).await?;
    assert!(action_of(&blocked, &id)?.blocked);
    c.set_account_holds(holds("fa-off", &id, false)).await?;
    assert_eq!(account(c, &id).await?.amount_due, "150.00");

    // On time: placed, with the agency's file; then the agency collects and keeps its fee.
    let placed = c
        .place_with_agency(place("place-120", &id))
        .await?
        .into_inner();
    assert!(placed.placed);
    let placement = placed.placement.unwrap_or_default();
    assert_eq!(
        (placement.amount.as_str(), placement.placed_on.clone()),
        ("150.00", day(120).to_string())
    );
    assert_eq!(placed.guard.map(|g| g.allowed), Some(true));
    assert_eq!(
        placed.account.map(|a| a.status),
        Some(pb::AccountStatus::InCollections as i32)
    );
    let file = String::from_utf8(placed.placement_file)?;
    let rows: Vec<&str> = file.lines().collect();
    assert!(rows[0].starts_with("layout,placement_id,account_id"));
    assert!(
        rows[1].contains(&placement.id) && rows[1].contains(",150.00,true,"),
        "{file}"
    );
    let twice = c.place_with_agency(place("place-again", &id)).await.err();
    assert_eq!(twice.map(|e| e.code()), Some(Code::FailedPrecondition));
    let collected = c
        .record_payment(pay(
            "agency-1",
            &id,
            "100.00",
            pb::PayerType::CollectionAgency,
        ))
        .await?
        .into_inner();
    assert_eq!(collected.agency_fee, "30.00");
    let postings: Vec<(String, String)> = collected
        .entry
        .unwrap_or_default()
        .postings
        .into_iter()
        .map(|p| (p.ledger_account, p.amount))
        .collect();
    assert!(
        postings.contains(&("CASH".into(), "70.00".into())),
        "{postings:?}"
    );
    assert!(
        postings.contains(&("COLLECTION_AGENCY_FEES".into(), "30.00".into())),
        "{postings:?}"
    );
    let recalled = c
        .recall_placement(pb::RecallPlacementRequest {
            idempotency_key: "recall-1".into(),
            placement_id: placement.id.clone(),
            reason: "patient called to pay".into(),
        })
        .await?
        .into_inner();
    assert_eq!(
        recalled.placement.map(|p| p.status),
        Some(pb::PlacementStatus::Recalled as i32)
    );
    let a = account(c, &id).await?;
    assert_eq!(
        (a.status, a.balance.as_str()),
        (pb::AccountStatus::Open as i32, "50.00")
    );

    // A plan can be made again after the default; the aging report adds up.
    plan_req.idempotency_key = "plan-2".into();
    plan_req.first_due_date = day(125).to_string();
    plan_req.terms = Some(Terms::InstallmentCount(2));
    assert!(c.create_payment_plan(plan_req).await.is_ok());
    let report = c
        .aging_report(pb::AgingReportRequest {
            page_size: 500,
            ..Default::default()
        })
        .await?
        .into_inner();
    let totals = report.totals.unwrap_or_default();
    let mut sum = Money::ZERO;
    for row in &report.rows {
        let aging = row.aging.clone().unwrap_or_default();
        assert_eq!(
            Some(&aging),
            account(c, &row.account_id).await?.aging.as_ref(),
            "row = GetAccount"
        );
        sum += m(&aging.total)?;
    }
    assert_eq!(m(&totals.total)?, sum);
    assert_eq!(totals.total, "50.00", "only the first patient still owes");
    Ok(())
}

/// The collections client the story calls through.
pub type Client = CollectionsServiceClient<TracedChannel>;

/// Today (UTC) plus `n` days: the story's day `n`.
pub fn day(n: u64) -> NaiveDate {
    chrono::Utc::now().date_naive() + chrono::Days::new(n)
}

fn m(s: &str) -> anyhow::Result<Money> {
    Ok(Money::parse(s)?)
}

fn pay(key: &str, account: &str, amount: &str, payer: pb::PayerType) -> pb::RecordPaymentRequest {
    pb::RecordPaymentRequest {
        idempotency_key: key.into(),
        account_id: account.into(),
        amount: amount.into(),
        method: pb::PaymentMethod::Card as i32,
        payer_type: payer as i32,
        ..Default::default()
    }
}

async fn account(c: &mut Client, id: &str) -> anyhow::Result<pb::Account> {
    Ok(c.get_account(pb::GetAccountRequest {
        id: id.into(),
        include_aging: true,
    })
    .await?
    .into_inner()
    .account
    .unwrap_or_default())
}

async fn dun(
    c: &mut Client,
    key: &str,
    as_of: NaiveDate,
) -> anyhow::Result<Vec<pb::DunningAction>> {
    let req = pb::RunDunningRequest {
        idempotency_key: key.into(),
        as_of_date: as_of.to_string(),
        ..Default::default()
    };
    Ok(c.run_dunning(req).await?.into_inner().actions)
}

fn action_of<'a>(
    actions: &'a [pb::DunningAction],
    account: &str,
) -> anyhow::Result<&'a pb::DunningAction> {
    actions
        .iter()
        .find(|a| a.account_id == account)
        .ok_or_else(|| anyhow::anyhow!("no action for {account}"))
}

fn place(key: &str, account: &str) -> pb::PlaceWithAgencyRequest {
    pb::PlaceWithAgencyRequest {
        idempotency_key: key.into(),
        account_id: account.into(),
        agency_id: AGENCY.into(),
        credit_reporting: true,
    }
}

fn holds(key: &str, account: &str, pending: bool) -> pb::SetAccountHoldsRequest {
    pb::SetAccountHoldsRequest {
        idempotency_key: key.into(),
        account_id: account.into(),
        financial_assistance_pending: pending,
        disputed: false,
        reason: "application received".into(),
    }
}
