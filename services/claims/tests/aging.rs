//! GetInsuranceAging through the generated client on SQLite and PostgreSQL, against figures
//! worked out by hand.

mod support;

use medbill_claims::ClaimStatus;
use medbill_proto::claims::v1 as pb;
use medbill_storage::testing::TestEnv;
use medbill_testkit::Caller;
use support::{Suite, assert_status, input, line};
use tonic::Code;

/// (min, max, balance, count) of each bucket.
fn buckets(p: &pb::PayerAging) -> Vec<(u32, u32, &str, u32)> {
    p.buckets
        .iter()
        .map(|b| (b.min_days, b.max_days, b.balance.as_str(), b.claim_count))
        .collect()
}

medbill_storage::conformance_tests! {
    namespace = "claims";

    async fn ages_unpaid_claims_by_payer(env: TestEnv) -> anyhow::Result<()> {
        let suite = Suite::start(&env).await?;
        let mut a = suite.client(Caller::TenantA);
        let aetna = suite.coverage(Caller::TenantA, "pat-1", "60054").await?;
        let uhc = suite.coverage(Caller::TenantA, "pat-2", "87726").await?;
        // One line each, so the claim's total is the charge given. As of 2026-06-30:
        let cases = [
            // (pcn, coverage, date of service, charge, status)
            ("A1", &aetna, "2026-06-15", "100.00", Some(ClaimStatus::Submitted)), // 15 days: 0-30
            ("A2", &aetna, "2026-05-31", "50.00", Some(ClaimStatus::Accepted)),   // 30 days: 0-30
            ("A3", &aetna, "2026-05-30", "25.00", Some(ClaimStatus::Accepted)),   // 31 days: 31-60
            ("A4", &aetna, "2026-04-01", "12.34", Some(ClaimStatus::Submitted)),  // 90 days: 61-90
            ("U1", &uhc, "2026-03-02", "10.00", Some(ClaimStatus::Accepted)),     // 120 days: 91-120
            ("U2", &uhc, "2026-03-01", "7.50", Some(ClaimStatus::Submitted)),     // 121 days: over 120
            ("U3", &uhc, "2025-01-01", "1000.00", Some(ClaimStatus::Accepted)),   // 545 days: over 120
            ("X1", &aetna, "2026-06-01", "999.00", Some(ClaimStatus::Paid)),      // adjudicated: out
            ("X2", &aetna, "2026-06-01", "999.00", None),                         // DRAFT: out
            ("X3", &aetna, "2026-07-01", "999.00", Some(ClaimStatus::Submitted)), // after as-of: out
        ];
        for (pcn, cov, day, charge, status) in cases {
            let mut claim = input(pcn, cov, day);
            claim.lines = vec![line("99213", charge, day)];
            let created = a
                .create_claim(pb::CreateClaimRequest { idempotency_key: pcn.into(), claim: Some(claim) })
                .await?
                .into_inner()
                .claim
                .unwrap();
            let path: &[ClaimStatus] = match status {
                None => &[],
                Some(ClaimStatus::Submitted) => &[ClaimStatus::Ready, ClaimStatus::Submitted],
                Some(ClaimStatus::Accepted) => &[ClaimStatus::Ready, ClaimStatus::Submitted, ClaimStatus::Accepted],
                Some(_) => &[ClaimStatus::Ready, ClaimStatus::Submitted, ClaimStatus::Paid],
            };
            suite.walk(&created.id, path).await?;
        }

        let r = a
            .get_insurance_aging(pb::GetInsuranceAgingRequest { as_of_date: "2026-06-30".into(), ..Default::default() })
            .await?
            .into_inner();
        assert_eq!(r.as_of_date, "2026-06-30");
        assert_eq!(r.payers.iter().map(|p| p.payer_id.as_str()).collect::<Vec<_>>(), vec!["60054", "87726"]);
        let (aetna_aging, uhc_aging) = (&r.payers[0], &r.payers[1]);
        assert_eq!(
            buckets(aetna_aging),
            vec![(0, 30, "150.00", 2), (31, 60, "25.00", 1), (61, 90, "12.34", 1), (91, 120, "0.00", 0), (121, 0, "0.00", 0)]
        );
        assert_eq!((aetna_aging.total_balance.as_str(), aetna_aging.claim_count), ("187.34", 4));
        assert_eq!(
            buckets(uhc_aging),
            vec![(0, 30, "0.00", 0), (31, 60, "0.00", 0), (61, 90, "0.00", 0), (91, 120, "10.00", 1), (121, 0, "1007.50", 2)]
        );
        let total = r.total.unwrap();
        assert_eq!((total.payer_id.as_str(), total.total_balance.as_str(), total.claim_count), ("", "1204.84", 7));
        assert_eq!(total.buckets[4].balance, "1007.50");

        // One payer only; a day later A2 turns 31 days old and A4 91.
        let r = a
            .get_insurance_aging(pb::GetInsuranceAgingRequest { as_of_date: "2026-07-01".into(), payer_id: "60054".into() })
            .await?
            .into_inner();
        assert_eq!(r.payers.len(), 1);
        assert_eq!(
            buckets(&r.payers[0]),
            // X3, served on 2026-07-01, is 0 days old now and counts.
            vec![(0, 30, "1099.00", 2), (31, 60, "75.00", 2), (61, 90, "0.00", 0), (91, 120, "12.34", 1), (121, 0, "0.00", 0)],
        );

        // Another tenant has nothing; a bad date names the field.
        let mut b = suite.client(Caller::TenantB);
        let r = b.get_insurance_aging(pb::GetInsuranceAgingRequest { as_of_date: "2026-06-30".into(), ..Default::default() }).await?.into_inner();
        assert!(r.payers.is_empty());
        assert_eq!(r.total.unwrap().total_balance, "0.00");
        let err = a.get_insurance_aging(pb::GetInsuranceAgingRequest { as_of_date: "2026-13-01".into(), ..Default::default() }).await.unwrap_err();
        assert_status(&err, Code::InvalidArgument, &["as_of_date"]);
        Ok(())
    }
}
