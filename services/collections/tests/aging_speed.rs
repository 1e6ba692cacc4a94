//! How long AgingReport's SQL takes over a large ledger (issue target: 1,000,000 ledger entries in
//! under 2 s). It measures only when `MEDBILL_AGING_ENTRIES` says how many entries to fill (over a
//! tenth as many accounts), since the fill takes a while:
//! `MEDBILL_AGING_ENTRIES=1000000 cargo test -p medbill-collections --test aging_speed -- --nocapture`
//! (`MEDBILL_TEST_PG_URL` for PostgreSQL too).

use std::time::Instant;

use chrono::Utc;
use medbill_collections::open_store;
use medbill_collections::records::AgingReportFilter;
use medbill_domain::TenantId;
use medbill_storage::Database;
use medbill_storage::query_plans::insert_numbered;

/// Adds entries `first..=last` in portable SQL: each entry is a charge of 100.00 (two in three)
/// or a payment of 50.00 on account `i % accounts`, dated `i % 200` days ago.
async fn fill(db: &Database, first: i64, last: i64, accounts: i64) -> anyhow::Result<()> {
    let now = Utc::now().timestamp_micros();
    let account = format!("'0190f3a2-0000-7000-8000-' || (100000000000 + (i % {accounts}))");
    let entry = "'0190f3a2-0000-7000-9000-' || (100000000000 + i)";
    let day = 86_400_000_000_i64;
    let ar = "CASE WHEN i % 3 = 0 THEN -5000 ELSE 10000 END";
    let at = format!("({now} - (i % 200) * {day})");
    let statements = [
        format!(
            "INSERT INTO postings (tenant_id, entry_id, line_no, ledger_account, amount_cents, \
             account_id, posted_at) SELECT 't', {entry}, 1, 'PATIENT_AR', {ar}, {account}, {at} FROM n"
        ),
        format!(
            "INSERT INTO postings (tenant_id, entry_id, line_no, ledger_account, amount_cents, \
             account_id, posted_at) SELECT 't', {entry}, 2, 'INSURANCE_AR', -({ar}), {account}, {at} FROM n"
        ),
        format!(
            "INSERT INTO journal_entries (tenant_id, id, account_id, kind, memo, posted_at) \
             SELECT 't', {entry}, {account}, 'ADJUSTMENT', '', {at} FROM n"
        ),
    ];
    Ok(insert_numbered(db, &statements, first, last, None).await?)
}

medbill_storage::conformance_tests! {
    namespace = "collections";

    async fn aging_report_over_a_large_ledger(db: Database) -> anyhow::Result<()> {
        let Some(entries) = std::env::var("MEDBILL_AGING_ENTRIES").ok().and_then(|v| v.parse::<i64>().ok()) else {
            println!("MEDBILL_AGING_ENTRIES not set: not measured");
            return Ok(());
        };
        let accounts = (entries / 10).max(1);
        let store = open_store(db.clone()).await?;
        let started = Instant::now();
        insert_numbered(
            &db,
            &["INSERT INTO accounts (tenant_id, id, patient_ref, status, created_at, updated_at) \
               SELECT 't', '0190f3a2-0000-7000-8000-' || (100000000000 + i), 'p-' || i, 'OPEN', 0, 0 FROM n"],
            0,
            accounts - 1,
            None,
        )
        .await?;
        let chunk = 100_000;
        let mut first = 0;
        while first < entries {
            let last = (first + chunk - 1).min(entries - 1);
            fill(&db, first, last, accounts).await?;
            first = last + 1;
        }
        println!("filled {entries} entries over {accounts} accounts in {:?}", started.elapsed());
        let tenant = TenantId::parse("t")?;
        let today = Utc::now().date_naive();
        let started = Instant::now();
        let report = store.aging_report(&tenant, today, &AgingReportFilter::default(), None, 51).await?;
        let took = started.elapsed();
        println!("AgingReport over {entries} entries: {took:?} ({} accounts, total {})", report.account_count, report.totals.total());
        assert_eq!(report.rows.len(), 51);
        assert!(report.totals.total().is_positive());
        Ok(())
    }
}
