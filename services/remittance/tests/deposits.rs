//! Provider adjustments (PLB) and deposit reconciliation through the generated gRPC client, on
//! SQLite and (when `MEDBILL_TEST_PG_URL` is set) PostgreSQL: an ERA with interest (L6) and a
//! recoupment (WO) is booked with its posting and its deposit reconciles to the penny; a
//! variance; an unmatched deposit that matches when its 835 arrives; a split deposit (one deposit,
//! two ERAs of one trace); a partial deposit (two deposits, one ERA); an ERA with no deposit;
//! idempotency; another tenant's ERAs and deposits are absent.

mod common;

use common::{Client, claim_view, header, ingest, interchange, paid_claim, serve, set};
use medbill_proto::remittance::v1 as pb;
use medbill_storage::Database;
use medbill_testkit::Caller;
use tonic::Code;

/// One 835 set paying `claims` (pcn, charge, paid, CO-45, PR-2) by `trace`, with `plbs`.
fn payment(
    control: &str,
    amount: &str,
    method: &str,
    trace: &str,
    claims: &[(&str, &str, &str, &str, &str)],
    plbs: &[&str],
) -> String {
    let mut body = header(amount, method, "20241120", trace, "ACME01");
    for (pcn, charge, paid, co45, pr2) in claims {
        body.extend(paid_claim(pcn, charge, paid, co45, pr2));
    }
    body.extend(plbs.iter().map(|p| (*p).to_owned()));
    set(control, &body)
}

fn claims() -> Vec<(String, medbill_remittance::directory::ClaimView)> {
    ["P1", "P2", "P3", "P4", "P5", "P6"]
        .iter()
        .map(|pcn| claim_view(pcn, "ACME01", "100.00"))
        .collect()
}

fn deposit(key: &str, trace: &str, amount: &str) -> pb::ReconcileDepositRequest {
    pb::ReconcileDepositRequest {
        idempotency_key: key.to_owned(),
        deposit: Some(pb::Deposit {
            trace_number: trace.to_owned(),
            amount: amount.to_owned(),
            deposit_date: "2024-11-21".to_owned(),
            payment_method: "ACH".to_owned(),
            payer_id: String::new(),
            bank_account_ref: "operating".to_owned(),
            description: "HCCLAIMPMT".to_owned(),
        }),
    }
}

async fn reconcile(
    c: &mut Client,
    key: &str,
    trace: &str,
    amount: &str,
) -> anyhow::Result<pb::DepositReconciliation> {
    Ok(c.reconcile_deposit(deposit(key, trace, amount))
        .await?
        .into_inner()
        .reconciliation
        .expect("a reconciliation"))
}

async fn get_era(c: &mut Client, id: &str) -> Result<pb::Era, tonic::Status> {
    Ok(c.get_era(pb::GetEraRequest {
        id: id.to_owned(),
        ..Default::default()
    })
    .await?
    .into_inner()
    .era
    .expect("an ERA"))
}

async fn by_trace(c: &mut Client, trace: &str) -> anyhow::Result<Vec<pb::DepositReconciliation>> {
    Ok(
        c.list_deposit_reconciliations(pb::ListDepositReconciliationsRequest {
            trace_number: trace.to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .reconciliations,
    )
}

fn status(r: &pb::DepositReconciliation) -> pb::ReconciliationStatus {
    r.status()
}

medbill_storage::conformance_tests! {
    namespace = "remittance";

    async fn plb_is_booked_and_the_deposit_reconciles_to_the_penny(db: Database) -> anyhow::Result<()> {
        let h = serve(db, claims()).await?;
        let mut a = h.client(Caller::TenantA);
        // Paid 100.00 - 20.00 = 80.00 on P1; L6 interest adds 2.50, WO recoups 5.55: 76.95.
        let file = interchange(301, &[payment(
            "0001", "76.95", "ACH", "EFT7695",
            &[("P1", "100.00", "80.00", "15.00", "5.00")],
            &["PLB*1234567893*20241231*L6:INT-2024*-2.50*WO:PCC-OLD-9*5.55"],
        )]);
        let era = ingest(&mut a, "plb", file).await?.remove(0);
        assert_eq!(era.status(), pb::EraStatus::Received);
        let plbs: Vec<_> = era.provider_adjustments.iter().map(|p| (p.reason.as_str(), p.amount.as_str(), p.description.as_str(), p.booked_at.is_some())).collect();
        assert_eq!(plbs, [("L6", "-2.50", "Interest Owed", false), ("WO", "5.55", "Overpayment Recovery", false)]);
        assert_eq!(era.reconciliation_status(), pb::ReconciliationStatus::UnmatchedEra, "money expected, no deposit yet");
        let unmatched = a.list_eras(pb::ListErasRequest { reconciliation_status: pb::ReconciliationStatus::UnmatchedEra as i32, ..Default::default() }).await?.into_inner().eras;
        assert_eq!(unmatched.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), [era.id.as_str()]);

        h.post_all().await?;
        let posted = get_era(&mut a, &era.id).await?;
        assert_eq!(posted.status(), pb::EraStatus::Posted);
        assert!(posted.provider_adjustments.iter().all(|p| p.booked_at.is_some()), "booked with the posting");
        let first_booking = posted.provider_adjustments[0].booked_at;

        let r = reconcile(&mut a, "dep-1", "EFT7695", "76.95").await?;
        assert_eq!(status(&r), pb::ReconciliationStatus::Matched, "{}", r.message);
        assert_eq!(r.era_ids, std::slice::from_ref(&era.id));
        assert_eq!((r.era_total.as_str(), r.difference.as_str(), r.deposit_total.as_str()), ("76.95", "0.00", "76.95"));
        assert_eq!((r.claim_payments_total.as_str(), r.provider_adjustments_total.as_str()), ("80.00", "3.05"));
        assert_eq!(r.deposit_ids, std::slice::from_ref(&r.id));
        let era_now = get_era(&mut a, &era.id).await?;
        assert_eq!(era_now.deposit_id, r.id);
        assert_eq!(era_now.reconciliation_status(), pb::ReconciliationStatus::Matched);
        assert_eq!(era_now.provider_adjustments[0].booked_at, first_booking, "booked once");

        // A retry answers the first result and stores nothing; the key with another deposit is refused.
        let again = reconcile(&mut a, "dep-1", "EFT7695", "76.95").await?;
        assert_eq!(again, r);
        assert_eq!(by_trace(&mut a, "EFT7695").await?.len(), 1);
        let reused = a.reconcile_deposit(deposit("dep-1", "EFT7695", "70.00")).await.unwrap_err();
        assert_eq!(reused.code(), Code::AlreadyExists);

        // Another tenant: no ERA to match, nothing of tenant A's listed or readable.
        let mut b = h.client(Caller::TenantB);
        let theirs = reconcile(&mut b, "dep-1", "EFT7695", "76.95").await?;
        assert_eq!(status(&theirs), pb::ReconciliationStatus::Unmatched);
        assert!(theirs.era_ids.is_empty());
        assert_eq!(by_trace(&mut b, "EFT7695").await?.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [theirs.id.as_str()]);
        assert_eq!(get_era(&mut b, &era.id).await.unwrap_err().code(), Code::NotFound);
        assert_eq!(by_trace(&mut a, "EFT7695").await?.len(), 1, "tenant B's deposit is not tenant A's");

        // Bad input names the field.
        let mut bad = deposit("bad", "T", "12.3.4");
        let err = a.reconcile_deposit(bad.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().contains("deposit.amount"), "{}", err.message());
        if let Some(d) = bad.deposit.as_mut() {
            d.amount = "1.00".into();
            d.deposit_date = String::new();
        }
        let err = a.reconcile_deposit(bad).await.unwrap_err();
        assert!(err.message().contains("deposit.deposit_date"), "{}", err.message());
        Ok(())
    }

    async fn variance_unmatched_split_and_partial_deposits(db: Database) -> anyhow::Result<()> {
        let h = serve(db, claims()).await?;
        let mut a = h.client(Caller::TenantA);
        let file = interchange(302, &[
            payment("0001", "80.00", "CHK", "CHK100", &[("P2", "100.00", "80.00", "15.00", "5.00")], &[]),
            // One trace, two payments: a split 835.
            payment("0002", "80.00", "ACH", "SPLIT1", &[("P3", "100.00", "80.00", "15.00", "5.00")], &[]),
            payment("0003", "70.00", "ACH", "SPLIT1", &[("P4", "100.00", "70.00", "25.00", "5.00")], &[]),
            payment("0004", "90.00", "ACH", "PART1", &[("P5", "100.00", "90.00", "5.00", "5.00")], &[]),
        ]);
        let eras = ingest(&mut a, "four", file).await?;
        assert_eq!(eras.len(), 4);

        // Variance: the bank shows 0.25 more than the ERA.
        let v = reconcile(&mut a, "v", "CHK100", "80.25").await?;
        assert_eq!(status(&v), pb::ReconciliationStatus::AmountMismatch);
        assert_eq!((v.era_total.as_str(), v.difference.as_str()), ("80.00", "0.25"));
        assert!(v.message.contains("exceed"), "{}", v.message);

        // Split: one deposit for both ERAs of the trace.
        let s = reconcile(&mut a, "s", "SPLIT1", "150.00").await?;
        assert_eq!(status(&s), pb::ReconciliationStatus::Matched, "{}", s.message);
        assert_eq!(s.era_ids, [eras[1].id.clone(), eras[2].id.clone()]);
        assert_eq!(s.era_total, "150.00");

        // Partial: short until the rest arrives, then both deposits are MATCHED.
        let p1 = reconcile(&mut a, "p1", "PART1", "50.00").await?;
        assert_eq!(status(&p1), pb::ReconciliationStatus::AmountMismatch);
        assert_eq!(p1.difference, "-40.00");
        let p2 = reconcile(&mut a, "p2", "PART1", "40.00").await?;
        assert_eq!(status(&p2), pb::ReconciliationStatus::Matched, "{}", p2.message);
        assert_eq!((p2.deposit_total.as_str(), p2.difference.as_str()), ("90.00", "0.00"));
        assert_eq!(p2.deposit_ids, [p1.id.clone(), p2.id.clone()]);
        let part = by_trace(&mut a, "PART1").await?;
        assert_eq!(part.iter().map(status).collect::<Vec<_>>(), [pb::ReconciliationStatus::Matched; 2]);

        // Unmatched deposit: no ERA yet; its 835 arriving later matches it.
        let u = reconcile(&mut a, "u", "LATE1", "100.00").await?;
        assert_eq!(status(&u), pb::ReconciliationStatus::Unmatched);
        assert!(u.era_ids.is_empty());
        assert_eq!(u.difference, "100.00");
        let late = ingest(&mut a, "late", interchange(303, &[
            payment("0001", "100.00", "ACH", "LATE1", &[("P6", "100.00", "100.00", "0", "0")], &[]),
        ])).await?;
        assert_eq!(late[0].reconciliation_status(), pb::ReconciliationStatus::Matched);
        assert_eq!(late[0].deposit_id, u.id);
        let now = by_trace(&mut a, "LATE1").await?;
        assert_eq!(status(&now[0]), pb::ReconciliationStatus::Matched);
        assert_eq!(now[0].era_ids, [late[0].id.clone()]);

        // Read back by outcome; every ERA now has a deposit.
        let mismatched = a.list_deposit_reconciliations(pb::ListDepositReconciliationsRequest {
            status: pb::ReconciliationStatus::AmountMismatch as i32, ..Default::default()
        }).await?.into_inner().reconciliations;
        assert_eq!(mismatched.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), [v.id.as_str()]);
        let unmatched_eras = a.list_eras(pb::ListErasRequest {
            reconciliation_status: pb::ReconciliationStatus::UnmatchedEra as i32, ..Default::default()
        }).await?.into_inner().eras;
        assert!(unmatched_eras.is_empty(), "{unmatched_eras:?}");
        let paged = a.list_deposit_reconciliations(pb::ListDepositReconciliationsRequest { page_size: 2, ..Default::default() }).await?.into_inner();
        assert_eq!(paged.reconciliations.len(), 2);
        assert!(!paged.next_page_token.is_empty());
        Ok(())
    }
}
