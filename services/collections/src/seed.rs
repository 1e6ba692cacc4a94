//! Fills a tenant's ledger fast for load drivers (`medbill bench collections`), never used by the
//! service: accounts and balanced journal entries written with `INSERT ... SELECT` over a counted
//! series, so a million entries take seconds instead of a million round trips. The rows are what
//! the service itself writes (postings carry their entry's account and time; the database's
//! balance trigger checks every entry), so reads and reports treat them as real history.
//!
//! Ids are valid UUID v7 text built from `run` (distinguishing one fill from another in a
//! database that is reused) and a row number.

use chrono::Utc;
use medbill_domain::TenantId;
use medbill_storage::{Database, StorageError, with_db};
use sqlx::AssertSqlSafe;

/// Rows per `INSERT ... SELECT` transaction.
const CHUNK: i64 = 100_000;
const DAY_MICROS: i64 = 86_400_000_000;

/// One fill: its tenant and the run tag of its ids.
#[derive(Debug, Clone)]
pub struct LedgerSeed {
    tenant: String,
    run: u16,
}

impl LedgerSeed {
    /// A fill of `tenant`'s ledger tagged `run`.
    ///
    /// # Errors
    /// `tenant` is not a valid tenant id.
    pub fn new(tenant: &str, run: u16) -> Result<Self, medbill_domain::TenantIdError> {
        // A valid tenant id holds no quote, so it may be written into the SQL.
        Ok(Self {
            tenant: TenantId::parse(tenant)?.as_str().to_owned(),
            run,
        })
    }

    /// SQL of the id of account `i` (`i` the series column).
    fn account_sql(&self, expr: &str) -> String {
        format!(
            "'0190f3a2-{:04x}-7000-8000-' || (100000000000 + ({expr}))",
            self.run
        )
    }

    /// Returns the id of account `n` of this fill.
    pub fn account_id(&self, n: i64) -> String {
        format!(
            "0190f3a2-{:04x}-7000-8000-{}",
            self.run,
            100_000_000_000 + n
        )
    }

    /// Opens accounts `0..accounts` (patient refs `seed-<run>-<n>`), each owing one patient
    /// responsibility of 100.00 (coinsurance) for a service `n % 90` days ago, with the claim's
    /// charges and what the payer paid, as an ERA leaves them.
    ///
    /// # Errors
    /// The database refused a statement.
    pub async fn accounts(&self, db: &Database, accounts: i64) -> Result<(), StorageError> {
        let now = Utc::now().timestamp_micros();
        let (t, run) = (&self.tenant, self.run);
        let account = self.account_sql("i");
        let entry = format!("'0190f3a2-{run:04x}-7000-9000-' || (100000000000 + i)");
        let at = format!("({now} - (i % 90) * {DAY_MICROS})");
        let statements = [
            format!(
                "INSERT INTO accounts (tenant_id, id, patient_ref, status, created_at, updated_at) \
                 SELECT '{t}', {account}, 'seed-{run:04x}-' || i, 'OPEN', {now}, {now} FROM n"
            ),
            format!(
                "INSERT INTO postings (tenant_id, entry_id, line_no, ledger_account, amount_cents, \
                 account_id, posted_at) SELECT '{t}', {entry}, 1, 'PATIENT_AR', 10000, {account}, {at} FROM n"
            ),
            format!(
                "INSERT INTO postings (tenant_id, entry_id, line_no, ledger_account, amount_cents, \
                 account_id, posted_at) SELECT '{t}', {entry}, 2, 'INSURANCE_AR', -10000, {account}, {at} FROM n"
            ),
            format!(
                "INSERT INTO journal_entries (tenant_id, id, account_id, kind, memo, posted_at) \
                 SELECT '{t}', {entry}, {account}, 'PATIENT_RESPONSIBILITY', 'seeded', {at} FROM n"
            ),
            format!(
                "INSERT INTO responsibility_entries (tenant_id, entry_id, patient_control_number, \
                 service_date, corrected, total_charge_cents, payer_paid_cents) \
                 SELECT '{t}', {entry}, 'PCN-' || i, '2026-01-15', FALSE, 50000, 30000 FROM n"
            ),
            format!(
                "INSERT INTO responsibility_lines (tenant_id, entry_id, line_no, group_code, reason, \
                 amount_cents) SELECT '{t}', {entry}, 1, 'PR', '2', 10000 FROM n"
            ),
        ];
        in_chunks(db, &statements, accounts).await
    }

    /// Adds `entries` journal entries over accounts `0..accounts` (entry `i` on account
    /// `i % accounts`): two in three a charge of 100.00, the third a payment of 50.00, dated
    /// `i % 200` days ago.
    ///
    /// # Errors
    /// The database refused a statement.
    pub async fn entries(
        &self,
        db: &Database,
        accounts: i64,
        entries: i64,
    ) -> Result<(), StorageError> {
        let now = Utc::now().timestamp_micros();
        let (t, run) = (&self.tenant, self.run);
        let account = self.account_sql(&format!("i % {}", accounts.max(1)));
        let entry = format!("'0190f3a2-{run:04x}-7000-a000-' || (100000000000 + i)");
        let ar = "CASE WHEN i % 3 = 0 THEN -5000 ELSE 10000 END";
        let other = "CASE WHEN i % 3 = 0 THEN 'CASH' ELSE 'INSURANCE_AR' END";
        let kind = "CASE WHEN i % 3 = 0 THEN 'ADJUSTMENT' ELSE 'PATIENT_RESPONSIBILITY' END";
        let at = format!("({now} - (i % 200) * {DAY_MICROS})");
        let statements = [
            format!(
                "INSERT INTO postings (tenant_id, entry_id, line_no, ledger_account, amount_cents, \
                 account_id, posted_at) SELECT '{t}', {entry}, 1, 'PATIENT_AR', {ar}, {account}, {at} FROM n"
            ),
            format!(
                "INSERT INTO postings (tenant_id, entry_id, line_no, ledger_account, amount_cents, \
                 account_id, posted_at) SELECT '{t}', {entry}, 2, {other}, -({ar}), {account}, {at} FROM n"
            ),
            format!(
                "INSERT INTO journal_entries (tenant_id, id, account_id, kind, memo, posted_at) \
                 SELECT '{t}', {entry}, {account}, {kind}, 'seeded', {at} FROM n"
            ),
        ];
        in_chunks(db, &statements, entries).await
    }
}

/// Runs `statements` over rows `0..rows`, [`CHUNK`] rows per transaction: each runs after
/// `WITH RECURSIVE n(i)` counting through the chunk and selects from `n`.
async fn in_chunks(db: &Database, statements: &[String], rows: i64) -> Result<(), StorageError> {
    let series = "WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i < $2) ";
    let mut first = 0;
    while first < rows {
        let last = (first + CHUNK - 1).min(rows - 1);
        with_db!(db, |pool| {
            let mut tx = pool.begin().await?;
            for statement in statements {
                sqlx::query(AssertSqlSafe(format!("{series}{statement}")))
                    .bind(first)
                    .bind(last)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        first = last + 1;
    }
    Ok(())
}
