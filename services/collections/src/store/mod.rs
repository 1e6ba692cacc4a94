//! Persistence of patient accounts and their double-entry ledger: the [`CollectionsStore`] trait
//! and its one implementation over PostgreSQL and SQLite ([`SqlCollectionsStore`], written once
//! with portable SQL through `medbill_storage`'s `with_tx!`/`with_db!`).
//!
//! The ledger invariant (two or more postings summing to zero per entry) is checked twice:
//! here, before anything is written ([`NewJournalEntry::balanced_cents`]), and by the database
//! itself (a trigger on `journal_entries`, see the migrations), so no code path can commit an
//! unbalanced entry.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use medbill_domain::{
    AccountId, ClaimId, IdempotencyKey, JournalEntryId, Money, PaymentPlanId, TenantId,
};
use medbill_runtime::ErrorCode;
use medbill_storage::filters::placeholders;
use medbill_storage::rows::{self, timestamp};
use medbill_storage::{Backend, Database, StorageError, Tx, TxConn, time, with_db, with_tx};
use sqlx::AssertSqlSafe;
use sqlx::migrate::Migrator;
use tonic::Code;

use crate::aging::Aging;
use crate::model::{
    Account, AccountFilter, AccountStatus, CollectionState, JournalEntry, LedgerAccount,
    LedgerError, NewAccount, NewJournalEntry, Posting,
};
use crate::records::{
    AgingReport, AgingReportFilter, AgingRow, ClaimBalance, NewPayment, NewRefund,
    NewResponsibility, NewSelfPayBill,
};

/// The service's PostgreSQL migrations, embedded.
pub static PG_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");
/// The service's SQLite migrations, embedded.
pub static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// The namespace (PostgreSQL schema, SQLite file suffix) of the collections service's tables.
pub const NAMESPACE: &str = "collections";

/// Why a store operation failed; each error declares its gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A journal entry with this key was already posted (each key posts one entry).
    #[error("a journal entry with key {0:?} was already posted")]
    DuplicateEntryKey(String),
    /// The account does not exist for this tenant.
    #[error("account {0} not found")]
    AccountNotFound(AccountId),
    /// The claim's self-pay encounter was already billed (by another key).
    #[error("claim {0} was already billed as a self-pay encounter")]
    SelfPayAlreadyBilled(ClaimId),
    /// The journal entry breaks the double-entry rules; nothing was written.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Storage(StorageError::Database(e))
    }
}

impl ErrorCode for StoreError {
    fn error_code(&self) -> Code {
        match self {
            StoreError::DuplicateEntryKey(_) => Code::AlreadyExists,
            StoreError::AccountNotFound(_) => Code::NotFound,
            StoreError::SelfPayAlreadyBilled(_) => Code::FailedPrecondition,
            StoreError::Ledger(_) => Code::FailedPrecondition,
            StoreError::Storage(e) => e.error_code(),
        }
    }

    fn client_message(&self) -> String {
        match self {
            StoreError::Storage(e) => e.client_message(),
            other => other.to_string(),
        }
    }
}

/// Stores patient accounts and their ledger, every operation scoped to one tenant. Writes take
/// the caller's transaction (the RPC's, which also holds its idempotency key).
#[async_trait]
pub trait CollectionsStore: StatementStore + PlanStore + DunningStore + Send + Sync {
    /// Returns the database the store writes to (the RPC opens its transaction there).
    fn database(&self) -> &Database;

    /// Opens an account (status OPEN, balance zero) in `tx`.
    async fn open_account(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account: &NewAccount,
    ) -> Result<Account, StoreError>;

    /// Returns the tenant's account `id` with its ledger balance, or `None` when the tenant has
    /// no such account.
    async fn get_account(
        &self,
        tenant: &TenantId,
        id: &AccountId,
    ) -> Result<Option<Account>, StoreError>;

    /// Returns up to `limit` of the tenant's accounts matching `filter` in id (creation) order,
    /// starting after the id `after` (keyset paging), each with its ledger balance.
    async fn list_accounts(
        &self,
        tenant: &TenantId,
        filter: &AccountFilter,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<Vec<Account>, StoreError>;

    /// Posts a balanced journal entry to one of the tenant's accounts in `tx`, recording `key`
    /// (the posting call's idempotency key) on it; a key posts one entry per tenant.
    ///
    /// An unbalanced entry is [`StoreError::Ledger`] and writes nothing; an unknown account is
    /// [`StoreError::AccountNotFound`]; a key already posted is [`StoreError::DuplicateEntryKey`].
    async fn post_journal_entry(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        key: &IdempotencyKey,
        entry: &NewJournalEntry,
    ) -> Result<JournalEntry, StoreError> {
        self.post_journal_entries(tx, tenant, &[(key, entry)])
            .await?
            .pop()
            .ok_or_else(|| corrupt("journal entry", "posted without an answer"))
    }

    /// Posts many entries as [`post_journal_entry`](Self::post_journal_entry) posts one, in
    /// order (each posted a microsecond or more after the one before), with multi-row
    /// statements; returns them posted, in order. Every entry is checked before anything is
    /// written; any error leaves `tx` for the caller to roll back (a key already posted is
    /// [`StoreError::DuplicateEntryKey`] naming the first key of the statement that failed).
    async fn post_journal_entries(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        entries: &[(&IdempotencyKey, &NewJournalEntry)],
    ) -> Result<Vec<JournalEntry>, StoreError>;

    /// Returns the journal entries of the tenant's account `account_id`, oldest first.
    async fn list_journal_entries(
        &self,
        tenant: &TenantId,
        account_id: &AccountId,
    ) -> Result<Vec<JournalEntry>, StoreError>;

    /// Locks the tenant's account `id` for the rest of `tx` (a concurrent posting to it waits,
    /// so a balance checked here still holds at commit) and returns it with its balance;
    /// [`StoreError::AccountNotFound`] when the tenant has no such account.
    async fn lock_account(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        id: &AccountId,
    ) -> Result<Account, StoreError> {
        self.lock_accounts(tx, tenant, &[*id])
            .await?
            .pop()
            .ok_or(StoreError::AccountNotFound(*id))
    }

    /// Locks the tenant's accounts `ids` (distinct) as [`lock_account`](Self::lock_account)
    /// locks one, in id order (so two callers locking overlapping sets wait for each other
    /// instead of deadlocking), and returns those that exist, in id order.
    async fn lock_accounts(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        ids: &[AccountId],
    ) -> Result<Vec<Account>, StoreError>;

    /// Returns the patient's account for postings that name none, locked as by
    /// [`lock_account`](Self::lock_account): the one chosen before, else the patient's oldest
    /// account not CLOSED, else a new one. Concurrent first calls for a patient choose one
    /// account.
    async fn patient_account(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        patient_ref: &str,
    ) -> Result<Account, StoreError> {
        let chosen = self.patient_accounts(tx, tenant, &[patient_ref]).await?;
        let id = chosen
            .first()
            .ok_or_else(|| corrupt("default account", "not chosen"))?;
        self.lock_account(tx, tenant, id).await
    }

    /// Chooses (opening where needed) the account of each patient in `patient_refs` (distinct)
    /// as [`patient_account`](Self::patient_account) does for one, without locking them:
    /// returns their ids in the order of `patient_refs`. The choices are written in
    /// patient order, so concurrent callers wait for each other instead of deadlocking.
    async fn patient_accounts(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        patient_refs: &[&str],
    ) -> Result<Vec<AccountId>, StoreError>;

    /// Returns the account's `PATIENT_AR` balance per claim (unallocated amounts under `None`),
    /// oldest first by the claim's first posting, read in `tx`.
    async fn claim_balances(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
    ) -> Result<Vec<ClaimBalance>, StoreError> {
        Ok(self
            .claim_balances_of(tx, tenant, &[*account_id])
            .await?
            .remove(account_id)
            .unwrap_or_default())
    }

    /// [`claim_balances`](Self::claim_balances) of many accounts in one read; an account with
    /// no open items has no entry.
    async fn claim_balances_of(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_ids: &[AccountId],
    ) -> Result<HashMap<AccountId, Vec<ClaimBalance>>, StoreError>;

    /// Returns the patient responsibility posted so far for `claim` on the account (its
    /// responsibility and reversal entries), read in `tx`.
    async fn claim_responsibility(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
        claim: &ClaimId,
    ) -> Result<Money, StoreError> {
        Ok(self
            .claim_responsibilities(tx, tenant, &[(*account_id, *claim)])
            .await?
            .remove(&(*account_id, *claim))
            .unwrap_or(Money::ZERO))
    }

    /// [`claim_responsibility`](Self::claim_responsibility) of many (account, claim) pairs in
    /// one read; a pair with nothing posted has no entry.
    async fn claim_responsibilities(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        pairs: &[(AccountId, ClaimId)],
    ) -> Result<HashMap<(AccountId, ClaimId), Money>, StoreError>;

    /// Records how a payment came (payer, method, reference) next to its journal entry.
    async fn insert_payment(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        payment: &NewPayment,
    ) -> Result<(), StoreError> {
        self.insert_payments(tx, tenant, std::slice::from_ref(payment))
            .await
    }

    /// Records many payments as [`insert_payment`](Self::insert_payment) records one, with
    /// multi-row statements.
    async fn insert_payments(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        payments: &[NewPayment],
    ) -> Result<(), StoreError>;

    /// Records a refund (status PENDING) next to its journal entry.
    async fn insert_refund(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        refund: &NewRefund,
    ) -> Result<(), StoreError>;

    /// Records where a patient-responsibility entry came from and its PR lines.
    async fn insert_responsibility(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        responsibility: &NewResponsibility,
    ) -> Result<(), StoreError> {
        self.insert_responsibilities(tx, tenant, std::slice::from_ref(responsibility))
            .await
    }

    /// Records many as [`insert_responsibility`](Self::insert_responsibility) records one,
    /// with multi-row statements.
    async fn insert_responsibilities(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        responsibilities: &[NewResponsibility],
    ) -> Result<(), StoreError>;

    /// Records a self-pay bill; [`StoreError::SelfPayAlreadyBilled`] when the claim has one.
    async fn insert_self_pay_bill(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        bill: &NewSelfPayBill,
    ) -> Result<(), StoreError>;

    /// Ages every account of the tenant with a balance as of `as_of` (the ledger as it stood at
    /// the end of that day, UTC), in SQL: the totals over every matching account and up to
    /// `limit` rows in account id order after `after`.
    async fn aging_report(
        &self,
        tenant: &TenantId,
        as_of: NaiveDate,
        filter: &AgingReportFilter,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<AgingReport, StoreError>;
}

/// Connects the store to a service database after running its migrations (platform tables first).
pub async fn open_store(db: Database) -> Result<Arc<dyn CollectionsStore>, StorageError> {
    db.migrate(&PG_MIGRATOR, &SQLITE_MIGRATOR).await?;
    Ok(Arc::new(SqlCollectionsStore::new(db)))
}

/// The [`CollectionsStore`] over a [`Database`] (PostgreSQL or SQLite), migrations already run.
#[derive(Debug, Clone)]
pub struct SqlCollectionsStore {
    db: Database,
}

/// Expands to the account columns plus the balance derived from the ledger (the sum of the
/// account's `PATIENT_AR` postings), from `accounts a`; callers add the WHERE clause.
///
/// Only the account's entries (`journal_entries_by_account`) and their postings (primary key) are
/// read, whatever the statistics: the ledger account is tested inside the sum, not in the WHERE
/// clause (a filter on it lets a planner read all of the tenant's `PATIENT_AR` postings through
/// `postings_by_ledger_account`), and `CROSS JOIN` makes SQLite keep the entries as the outer
/// loop (PostgreSQL treats it as an inner join).
macro_rules! select_accounts {
    () => {
        "SELECT a.tenant_id, a.id, a.patient_ref, a.guarantor_ref, a.status, a.created_at, \
         a.updated_at, a.first_statement_date, a.last_statement_date, \
         (SELECT pp.id FROM payment_plans pp WHERE pp.tenant_id = a.tenant_id \
         AND pp.account_id = a.id AND pp.status IN ('ACTIVE', 'DELINQUENT')) AS payment_plan_id, \
         (SELECT pp.status FROM payment_plans pp WHERE pp.tenant_id = a.tenant_id \
         AND pp.account_id = a.id AND pp.status IN ('ACTIVE', 'DELINQUENT')) \
         AS payment_plan_status, CAST(COALESCE((SELECT SUM(CASE WHEN p.ledger_account = 'PATIENT_AR' \
         THEN p.amount_cents ELSE 0 END) FROM journal_entries e CROSS JOIN postings p \
         WHERE p.tenant_id = e.tenant_id AND p.entry_id = e.id \
         AND e.tenant_id = a.tenant_id AND e.account_id = a.id), 0) AS BIGINT) AS balance_cents \
         FROM accounts a "
    };
}

mod dunning;
mod plans;
mod statements;
pub use dunning::DunningStore;
pub use plans::PlanStore;
pub use statements::{StatementSources, StatementStore};

const SELECT_ACCOUNT: &str = concat!(select_accounts!(), "WHERE a.tenant_id = $1 AND a.id = $2");

/// The start of a page of accounts; `list_accounts` adds the filters given (see
/// `medbill_storage::filters`: with `($4 IS NULL OR a.id > $4)` each page of a listing read the
/// tenant's accounts from the first).
const SELECT_ACCOUNT_PAGE: &str = concat!(select_accounts!(), "WHERE a.tenant_id = $1");

impl SqlCollectionsStore {
    /// Wraps a migrated database.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

const SELECT_ACCOUNT_ENTRIES: &str = "SELECT tenant_id, id, account_id, kind, memo, source_ref, posted_at, \
     idempotency_key FROM journal_entries WHERE tenant_id = $1 AND account_id = $2 ORDER BY id";

const SELECT_ACCOUNT_PAYERS: &str =
    "SELECT entry_id, payer_type FROM payments WHERE tenant_id = $1 AND account_id = $2";

/// The account's entries are the outer loop (`CROSS JOIN` keeps them so in SQLite): with postings
/// outer, SQLite read every posting of the tenant for each account to save a sort, which made a
/// statement or a ledger read grow with the tenant (13 s per 1,000 named statements at 10,000
/// accounts).
const SELECT_ACCOUNT_POSTINGS: &str = "SELECT p.entry_id, p.line_no, p.ledger_account, p.amount_cents, \
     p.claim_ref FROM journal_entries e CROSS JOIN postings p \
     WHERE p.tenant_id = e.tenant_id AND p.entry_id = e.id \
     AND e.tenant_id = $1 AND e.account_id = $2 ORDER BY p.entry_id, p.line_no";

#[async_trait]
impl CollectionsStore for SqlCollectionsStore {
    fn database(&self) -> &Database {
        &self.db
    }

    async fn open_account(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account: &NewAccount,
    ) -> Result<Account, StoreError> {
        insert_account(tx, tenant, AccountId::new(), account).await
    }

    async fn get_account(
        &self,
        tenant: &TenantId,
        id: &AccountId,
    ) -> Result<Option<Account>, StoreError> {
        let row: Option<AccountRow> = with_db!(self.db, |pool| {
            sqlx::query_as(SELECT_ACCOUNT)
                .bind(tenant.as_str())
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        row.map(AccountRow::into_model).transpose()
    }

    async fn list_accounts(
        &self,
        tenant: &TenantId,
        filter: &AccountFilter,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<Vec<Account>, StoreError> {
        let after = after.map(ToString::to_string);
        let status = filter.status.map(AccountStatus::as_str);
        let given = [status, filter.patient_ref.as_deref(), after.as_deref()];
        let sql = medbill_storage::filters::page_sql(
            SELECT_ACCOUNT_PAGE,
            2,
            &[
                (status.is_some(), "a.status ="),
                (filter.patient_ref.is_some(), "a.patient_ref ="),
                (after.is_some(), "a.id >"),
            ],
            "a.id",
        );
        let rows: Vec<AccountRow> = with_db!(self.db, |pool| {
            // Only numbered placeholders are formatted into the text; the values are bound.
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(tenant.as_str());
            for value in given.into_iter().flatten() {
                query = query.bind(value);
            }
            query.bind(i64::from(limit)).fetch_all(pool).await?
        });
        rows.into_iter().map(AccountRow::into_model).collect()
    }

    async fn post_journal_entries(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        entries: &[(&IdempotencyKey, &NewJournalEntry)],
    ) -> Result<Vec<JournalEntry>, StoreError> {
        // Checked before any I/O: an unbalanced entry never reaches the database.
        let cents = entries
            .iter()
            .map(|(_, e)| e.balanced_cents())
            .collect::<Result<Vec<_>, _>>()?;
        let accounts: Vec<AccountId> = entries
            .iter()
            .map(|(_, e)| e.account_id)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let found = existing_accounts(tx, tenant, &accounts).await?;
        if let Some((_, e)) = entries
            .iter()
            .find(|(_, e)| !found.contains(&e.account_id.to_string()))
        {
            return Err(StoreError::AccountNotFound(e.account_id));
        }

        // Each entry a microsecond or more after the one before: the ledger's order is the
        // order the entries were given in.
        let mut last = 0;
        let mut posted = Vec::with_capacity(entries.len());
        for (key, entry) in entries {
            let now = time::now_micros().max(last + 1);
            last = now;
            posted.push((
                JournalEntry {
                    id: JournalEntryId::new(),
                    tenant_id: tenant.clone(),
                    account_id: entry.account_id,
                    kind: entry.kind,
                    memo: entry.memo.clone(),
                    source_ref: entry.source_ref.clone(),
                    posted_at: timestamp(now, "journal_entries.posted_at")?,
                    idempotency_key: Some(key.as_str().to_owned()),
                    payer_type: entry.payer_type,
                    postings: entry.postings.clone(),
                },
                now,
            ));
        }
        let ids: Vec<(String, String)> = posted
            .iter()
            .map(|(e, _)| (e.id.to_string(), e.account_id.to_string()))
            .collect();

        // Postings first, entry rows last: each entry's insert trigger verifies the balance
        // of its postings already written (see the migrations).
        let mut legs = Vec::new();
        for (((entry, now), (id, account)), cents) in posted.iter().zip(&ids).zip(&cents) {
            for (i, (posting, c)) in entry.postings.iter().zip(cents).enumerate() {
                let line_no = i64::try_from(i + 1).unwrap_or(i64::MAX);
                let claim = posting.claim.map(|c| c.to_string());
                legs.push((
                    id,
                    line_no,
                    posting.ledger_account.as_str(),
                    *c,
                    claim,
                    account,
                    *now,
                ));
            }
        }
        for chunk in legs.chunks(rows_chunk(tx)) {
            let sql = format!(
                "INSERT INTO postings (tenant_id, entry_id, line_no, ledger_account, amount_cents, \
                 claim_ref, account_id, posted_at) VALUES {}",
                value_rows(chunk.len(), 7)
            );
            with_tx!(tx, |conn| {
                let mut q = sqlx::query(AssertSqlSafe(sql.clone())).bind(tenant.as_str());
                for (id, line_no, ledger, c, claim, account, now) in chunk {
                    q = q
                        .bind(*id)
                        .bind(*line_no)
                        .bind(*ledger)
                        .bind(*c)
                        .bind(claim.as_deref())
                        .bind(*account)
                        .bind(*now);
                }
                q.execute(&mut *conn).await?;
            });
        }
        let headers: Vec<_> = posted.iter().zip(&ids).collect();
        for chunk in headers.chunks(rows_chunk(tx)) {
            let sql = format!(
                "INSERT INTO journal_entries (tenant_id, id, account_id, kind, memo, source_ref, \
                 posted_at, idempotency_key) VALUES {}",
                value_rows(chunk.len(), 7)
            );
            let inserted = with_tx!(tx, |conn| {
                let mut q = sqlx::query(AssertSqlSafe(sql.clone())).bind(tenant.as_str());
                for ((entry, now), (id, account)) in chunk {
                    q = q
                        .bind(id)
                        .bind(account)
                        .bind(entry.kind.as_str())
                        .bind(&entry.memo)
                        .bind(&entry.source_ref)
                        .bind(*now)
                        .bind(&entry.idempotency_key);
                }
                q.execute(&mut *conn).await.map(|r| r.rows_affected())
            });
            if let Err(e) = inserted {
                // A fresh UUID v7 cannot collide: the unique key broken is (tenant, idempotency_key).
                if medbill_storage::error::is_unique_violation(&e) {
                    let first = chunk
                        .first()
                        .and_then(|((entry, _), _)| entry.idempotency_key.clone())
                        .unwrap_or_default();
                    return Err(StoreError::DuplicateEntryKey(first));
                }
                return Err(e.into());
            }
        }
        // The accounts' activity changes what they owe; keep updated_at meaningful (the time
        // of each account's last entry).
        let mut touched: BTreeMap<String, i64> = BTreeMap::new();
        for ((_, now), (_, account)) in &headers {
            touched.insert(account.clone(), *now);
        }
        let touched: Vec<(String, i64)> = touched.into_iter().collect();
        for chunk in touched.chunks(rows_chunk(tx)) {
            // $1 tenant; each account binds its id and time for the CASE, then its id again.
            let cases: String = (0..chunk.len())
                .map(|i| format!(" WHEN ${} THEN ${}", 2 + 2 * i, 3 + 2 * i))
                .collect();
            let sql = format!(
                "UPDATE accounts SET updated_at = CASE id{cases} END \
                 WHERE tenant_id = $1 AND id IN ({})",
                placeholders(2 + 2 * chunk.len(), chunk.len())
            );
            with_tx!(tx, |conn| {
                let mut q = sqlx::query(AssertSqlSafe(sql.clone()))
                    .persistent(false)
                    .bind(tenant.as_str());
                for (id, now) in chunk {
                    q = q.bind(id).bind(*now);
                }
                for (id, _) in chunk {
                    q = q.bind(id);
                }
                q.execute(&mut *conn).await?;
            });
        }
        Ok(posted.into_iter().map(|(e, _)| e).collect())
    }

    async fn list_journal_entries(
        &self,
        tenant: &TenantId,
        account_id: &AccountId,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let account_id = account_id.to_string();
        let (headers, postings): (Vec<EntryRow>, Vec<PostingRow>) = with_db!(self.db, |pool| {
            let headers = sqlx::query_as(SELECT_ACCOUNT_ENTRIES)
                .bind(tenant.as_str())
                .bind(&account_id)
                .fetch_all(pool)
                .await?;
            let postings = sqlx::query_as(SELECT_ACCOUNT_POSTINGS)
                .bind(tenant.as_str())
                .bind(&account_id)
                .fetch_all(pool)
                .await?;
            (headers, postings)
        });
        let payers: Vec<(String, String)> = with_db!(self.db, |pool| {
            sqlx::query_as(SELECT_ACCOUNT_PAYERS)
                .bind(tenant.as_str())
                .bind(&account_id)
                .fetch_all(pool)
                .await?
        });
        assemble_entries(headers, postings, payers)
    }

    async fn lock_accounts(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        ids: &[AccountId],
    ) -> Result<Vec<Account>, StoreError> {
        let sorted: Vec<String> = ids
            .iter()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(ToString::to_string)
            .collect();
        let now = time::now_micros();
        let mut accounts = Vec::with_capacity(sorted.len());
        for chunk in sorted.chunks(rows_chunk(tx)) {
            if chunk.len() > 1
                && let TxConn::Postgres(conn) = tx.conn()
            {
                // An UPDATE locks rows in the order its plan meets them; this takes them in id
                // order first. (SQLite's Tx already holds the write lock.)
                let sql = format!(
                    "SELECT id FROM accounts WHERE tenant_id = $1 AND id IN ({}) \
                     ORDER BY id FOR UPDATE",
                    placeholders(2, chunk.len())
                );
                let mut q = sqlx::query(AssertSqlSafe(sql))
                    .persistent(false)
                    .bind(tenant.as_str());
                for id in chunk {
                    q = q.bind(id);
                }
                q.execute(&mut *conn).await?;
            }
            let list = placeholders(3, chunk.len());
            let update = format!(
                "UPDATE accounts SET updated_at = $2 WHERE tenant_id = $1 AND id IN ({list})"
            );
            let select = format!(
                "{}WHERE a.tenant_id = $1 AND a.id IN ({}) ORDER BY a.id",
                select_accounts!(),
                placeholders(2, chunk.len())
            );
            let rows: Vec<AccountRow> = with_tx!(tx, |conn| {
                let mut q = sqlx::query(AssertSqlSafe(update.clone()))
                    .persistent(false)
                    .bind(tenant.as_str())
                    .bind(now);
                for id in chunk {
                    q = q.bind(id);
                }
                q.execute(&mut *conn).await?;
                let mut q = sqlx::query_as(AssertSqlSafe(select.clone())).bind(tenant.as_str());
                for id in chunk {
                    q = q.bind(id);
                }
                q.fetch_all(&mut *conn).await?
            });
            for row in rows {
                accounts.push(row.into_model()?);
            }
        }
        Ok(accounts)
    }

    async fn patient_accounts(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        patient_refs: &[&str],
    ) -> Result<Vec<AccountId>, StoreError> {
        let sorted: Vec<&str> = patient_refs
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut chosen = default_accounts(tx, tenant, &sorted).await?;
        let missing: Vec<&str> = sorted
            .iter()
            .copied()
            .filter(|p| !chosen.contains_key(*p))
            .collect();
        if !missing.is_empty() {
            let existing = oldest_open_accounts(tx, tenant, &missing).await?;
            let candidates: Vec<(&str, AccountId, bool)> = missing
                .iter()
                .map(|p| match existing.get(*p) {
                    Some(id) => (*p, *id, false),
                    None => (*p, AccountId::new(), true),
                })
                .collect();
            for chunk in candidates.chunks(rows_chunk(tx)) {
                // A concurrent first posting for the same patient waits here (PostgreSQL)
                // and then finds the other's choice.
                let sql = format!(
                    "INSERT INTO patient_default_accounts (tenant_id, patient_ref, account_id) \
                     VALUES {} ON CONFLICT (tenant_id, patient_ref) DO NOTHING",
                    value_rows(chunk.len(), 2)
                );
                let ids: Vec<String> = chunk.iter().map(|(_, id, _)| id.to_string()).collect();
                with_tx!(tx, |conn| {
                    let mut q = sqlx::query(AssertSqlSafe(sql.clone())).bind(tenant.as_str());
                    for ((p, _, _), id) in chunk.iter().zip(&ids) {
                        q = q.bind(*p).bind(id);
                    }
                    q.execute(&mut *conn).await?;
                });
            }
            let now_chosen = default_accounts(tx, tenant, &missing).await?;
            let opened: Vec<(AccountId, NewAccount)> = candidates
                .iter()
                .filter(|(p, id, new)| *new && now_chosen.get(*p) == Some(id))
                .map(|(p, id, _)| {
                    let account = NewAccount {
                        patient_ref: (*p).to_owned(),
                        guarantor_ref: None,
                    };
                    (*id, account)
                })
                .collect();
            insert_accounts(tx, tenant, &opened).await?;
            chosen.extend(now_chosen);
        }
        patient_refs
            .iter()
            .map(|p| {
                chosen
                    .get(*p)
                    .copied()
                    .ok_or_else(|| corrupt("default account", "not chosen"))
            })
            .collect()
    }

    async fn claim_balances_of(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_ids: &[AccountId],
    ) -> Result<HashMap<AccountId, Vec<ClaimBalance>>, StoreError> {
        let ids: Vec<String> = account_ids.iter().map(ToString::to_string).collect();
        let mut balances: HashMap<AccountId, Vec<ClaimBalance>> = HashMap::new();
        for chunk in ids.chunks(rows_chunk(tx)) {
            let sql = format!(
                "SELECT e.account_id, p.claim_ref, \
                 MIN(CASE WHEN p.ledger_account = 'PATIENT_AR' THEN e.posted_at END) AS first_posted, \
                 CAST(COALESCE(SUM(CASE WHEN p.ledger_account = 'PATIENT_AR' THEN p.amount_cents \
                 ELSE 0 END), 0) AS BIGINT) AS cents FROM journal_entries e CROSS JOIN postings p \
                 WHERE p.tenant_id = e.tenant_id AND p.entry_id = e.id \
                 AND e.tenant_id = $1 AND e.account_id IN ({}) GROUP BY e.account_id, p.claim_ref",
                placeholders(2, chunk.len())
            );
            let rows: Vec<(String, Option<String>, Option<i64>, i64)> = with_tx!(tx, |conn| {
                let mut q = sqlx::query_as(AssertSqlSafe(sql.clone()))
                    .persistent(false)
                    .bind(tenant.as_str());
                for id in chunk {
                    q = q.bind(id);
                }
                q.fetch_all(&mut *conn).await?
            });
            for (account, claim, first_posted, cents) in rows {
                // A claim with postings on other ledger accounts only owes the patient nothing.
                let Some(first_posted) = first_posted else {
                    continue;
                };
                let account = AccountId::parse(&account).map_err(|e| corrupt("account id", e))?;
                balances.entry(account).or_default().push(ClaimBalance {
                    claim: claim_ref(claim.as_deref())?,
                    first_posted,
                    balance: Money::from_minor_units(cents),
                });
            }
        }
        for open in balances.values_mut() {
            // The claim breaks ties: the order does not hang on how the rows were read.
            open.sort_by_key(|b| (b.first_posted, b.claim));
        }
        Ok(balances)
    }

    async fn claim_responsibilities(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        pairs: &[(AccountId, ClaimId)],
    ) -> Result<HashMap<(AccountId, ClaimId), Money>, StoreError> {
        let wanted: std::collections::HashSet<(AccountId, ClaimId)> =
            pairs.iter().copied().collect();
        let accounts: Vec<String> = pairs
            .iter()
            .map(|(a, _)| *a)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .map(|a| a.to_string())
            .collect();
        let mut posted = HashMap::new();
        for chunk in accounts.chunks(rows_chunk(tx)) {
            let sql = format!(
                "SELECT e.account_id, p.claim_ref, CAST(COALESCE(SUM(CASE WHEN \
                 p.ledger_account = 'PATIENT_AR' THEN p.amount_cents ELSE 0 END), 0) AS BIGINT) \
                 FROM journal_entries e CROSS JOIN postings p \
                 WHERE p.tenant_id = e.tenant_id AND p.entry_id = e.id \
                 AND e.tenant_id = $1 AND e.account_id IN ({}) \
                 AND e.kind IN ('PATIENT_RESPONSIBILITY', 'REVERSAL') \
                 GROUP BY e.account_id, p.claim_ref",
                placeholders(2, chunk.len())
            );
            let rows: Vec<(String, Option<String>, i64)> = with_tx!(tx, |conn| {
                let mut q = sqlx::query_as(AssertSqlSafe(sql.clone()))
                    .persistent(false)
                    .bind(tenant.as_str());
                for id in chunk {
                    q = q.bind(id);
                }
                q.fetch_all(&mut *conn).await?
            });
            for (account, claim, cents) in rows {
                let Some(claim) = claim_ref(claim.as_deref())? else {
                    continue;
                };
                let account = AccountId::parse(&account).map_err(|e| corrupt("account id", e))?;
                if wanted.contains(&(account, claim)) {
                    posted.insert((account, claim), Money::from_minor_units(cents));
                }
            }
        }
        Ok(posted)
    }

    async fn insert_payments(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        payments: &[NewPayment],
    ) -> Result<(), StoreError> {
        let now = time::now_micros();
        for chunk in payments.chunks(rows_chunk(tx)) {
            // $1 tenant and $2 the time are shared; each row binds ten values.
            let tuples = (0..chunk.len())
                .map(|i| {
                    let b = 3 + 10 * i;
                    format!("($1, {}, $2)", placeholders(b, 10))
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO payments (tenant_id, id, account_id, entry_id, payer_type, payer_ref, \
                 method, reference, received_date, amount_cents, claim_ref, created_at) \
                 VALUES {tuples}"
            );
            let values = chunk
                .iter()
                .map(|p| {
                    Ok((
                        p.id.to_string(),
                        p.account_id.to_string(),
                        p.entry_id.to_string(),
                        p.received_date.to_string(),
                        rows::cents(p.amount, "amount")?,
                        p.claim.map(|c| c.to_string()),
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            with_tx!(tx, |conn| {
                let mut q = sqlx::query(AssertSqlSafe(sql.clone()))
                    .bind(tenant.as_str())
                    .bind(now);
                for (p, (id, account, entry, received, cents, claim)) in chunk.iter().zip(&values) {
                    q = q
                        .bind(id)
                        .bind(account)
                        .bind(entry)
                        .bind(p.payer_type.as_str())
                        .bind(p.payer_ref.as_deref())
                        .bind(p.method.as_str())
                        .bind(p.reference.as_deref())
                        .bind(received)
                        .bind(*cents)
                        .bind(claim.as_deref());
                }
                q.execute(&mut *conn).await?;
            });
        }
        Ok(())
    }

    async fn insert_refund(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        refund: &NewRefund,
    ) -> Result<(), StoreError> {
        let cents = rows::cents(refund.amount, "amount")?;
        let now = time::now_micros();
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO refunds (tenant_id, id, account_id, entry_id, amount_cents, method, \
                 status, reason, reference, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, 'PENDING', $7, $8, $9)",
            )
            .bind(tenant.as_str())
            .bind(refund.id.to_string())
            .bind(refund.account_id.to_string())
            .bind(refund.entry_id.to_string())
            .bind(cents)
            .bind(refund.method.as_str())
            .bind(&refund.reason)
            .bind(refund.reference.as_deref())
            .bind(now)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    async fn insert_responsibilities(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        responsibilities: &[NewResponsibility],
    ) -> Result<(), StoreError> {
        let mut lines = Vec::new();
        for chunk in responsibilities.chunks(rows_chunk(tx)) {
            let sql = format!(
                "INSERT INTO responsibility_entries (tenant_id, entry_id, claim_ref, era_id, \
                 patient_control_number, service_date, corrected, total_charge_cents, \
                 payer_paid_cents) VALUES {}",
                value_rows(chunk.len(), 8)
            );
            let mut values = Vec::with_capacity(chunk.len());
            for r in chunk {
                let entry_id = r.entry_id.to_string();
                for (i, line) in r.lines.iter().enumerate() {
                    let cents = rows::cents(line.amount, "adjustments.amount")?;
                    let line_no = i64::try_from(i + 1).unwrap_or(i64::MAX);
                    lines.push((entry_id.clone(), line_no, line, cents));
                }
                values.push((
                    entry_id,
                    r.claim.map(|c| c.to_string()),
                    r.era_id.map(|e| e.to_string()),
                    r.service_date.map(|d| d.to_string()),
                    r.total_charge
                        .map(|m| rows::cents(m, "total_charge"))
                        .transpose()?,
                    r.payer_paid
                        .map(|m| rows::cents(m, "payer_paid"))
                        .transpose()?,
                ));
            }
            with_tx!(tx, |conn| {
                let mut q = sqlx::query(AssertSqlSafe(sql.clone())).bind(tenant.as_str());
                for (r, (entry, claim, era, date, charge, paid)) in chunk.iter().zip(&values) {
                    q = q
                        .bind(entry)
                        .bind(claim.as_deref())
                        .bind(era.as_deref())
                        .bind(r.patient_control_number.as_deref())
                        .bind(date.as_deref())
                        .bind(r.corrected)
                        .bind(*charge)
                        .bind(*paid);
                }
                q.execute(&mut *conn).await?;
            });
        }
        for chunk in lines.chunks(rows_chunk(tx)) {
            let sql = format!(
                "INSERT INTO responsibility_lines (tenant_id, entry_id, line_no, group_code, \
                 reason, amount_cents) VALUES {}",
                value_rows(chunk.len(), 5)
            );
            with_tx!(tx, |conn| {
                let mut q = sqlx::query(AssertSqlSafe(sql.clone())).bind(tenant.as_str());
                for (entry, line_no, line, cents) in chunk {
                    q = q
                        .bind(entry)
                        .bind(*line_no)
                        .bind(&line.group)
                        .bind(&line.reason)
                        .bind(*cents);
                }
                q.execute(&mut *conn).await?;
            });
        }
        Ok(())
    }

    async fn insert_self_pay_bill(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        bill: &NewSelfPayBill,
    ) -> Result<(), StoreError> {
        let gross = rows::cents(bill.gross, "charges")?;
        let discount = rows::cents(bill.discount, "discount")?;
        // Insert-if-absent: a failed statement would abort the PostgreSQL transaction.
        let inserted = with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO self_pay_bills (tenant_id, claim_ref, entry_id, service_date, \
                 gross_cents, discount_cents, estimate_id) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (tenant_id, claim_ref) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(bill.claim.to_string())
            .bind(bill.entry_id.to_string())
            .bind(bill.service_date.to_string())
            .bind(gross)
            .bind(discount)
            .bind(bill.estimate_id.map(|e| e.to_string()))
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        if inserted == 0 {
            return Err(StoreError::SelfPayAlreadyBilled(bill.claim));
        }
        Ok(())
    }

    async fn aging_report(
        &self,
        tenant: &TenantId,
        as_of: NaiveDate,
        filter: &AgingReportFilter,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<AgingReport, StoreError> {
        let bounds = AgingBounds::new(as_of)?;
        let status = filter.status.map(AccountStatus::as_str);
        let min_bucket = i64::from(filter.min_bucket.max(1));
        let after = after.map(ToString::to_string);
        let rows: Vec<AgingRowRow> = with_db!(self.db, |pool| {
            sqlx::query_as(AGING_PAGE)
                .bind(tenant.as_str())
                .bind(bounds.end)
                .bind(bounds.d30)
                .bind(bounds.d60)
                .bind(bounds.d90)
                .bind(bounds.d120)
                .bind(status)
                .bind(min_bucket)
                .bind(after.as_deref())
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        let totals = match rows.first() {
            Some(r) => AgingTotalsRow {
                accounts: r.accounts,
                b0: Some(r.t0),
                b1: Some(r.t1),
                b2: Some(r.t2),
                b3: Some(r.t3),
                b4: Some(r.t4),
            },
            // Past the last row (the ledger changed since the previous page): totals alone.
            None => with_db!(self.db, |pool| {
                sqlx::query_as(AGING_TOTALS)
                    .bind(tenant.as_str())
                    .bind(bounds.end)
                    .bind(bounds.d30)
                    .bind(bounds.d60)
                    .bind(bounds.d90)
                    .bind(bounds.d120)
                    .bind(status)
                    .bind(min_bucket)
                    .fetch_one(pool)
                    .await?
            }),
        };
        Ok(AgingReport {
            totals: aging_of(
                totals.b0.unwrap_or(0),
                totals.b1.unwrap_or(0),
                totals.b2.unwrap_or(0),
                totals.b3.unwrap_or(0),
                totals.b4.unwrap_or(0),
            ),
            account_count: u64::try_from(totals.accounts).unwrap_or(0),
            rows: rows
                .into_iter()
                .map(AgingRowRow::into_model)
                .collect::<Result<_, _>>()?,
        })
    }
}

/// The aging of every account of tenant `$1` as of the instant `$2` (exclusive), in one
/// aggregation over the tenant's `PATIENT_AR` postings, read in account order from
/// `postings_by_account` (each posting carries its entry's account and time). Credits pay the oldest charges first (as
/// in [`crate::aging::age`]), so what stays open is the newest charges up to the balance `B`:
/// the part of it in charges posted since an instant `t` is `min(B, N(t))`, `N(t)` the charges
/// posted since `t`. With `t` the first instants of the days 30, 60, 90 and 120 days before
/// (`$3`..`$6`), the buckets are the differences of those caps. Accounts owing nothing are left
/// out; `$7` filters on status, `$8` on the oldest bucket (1 = 0-30 days ... 5 = over 120).
macro_rules! aging_by_account {
    () => {
        "WITH ar AS ( \
           SELECT p.account_id, \
             SUM(p.amount_cents) AS bal, \
             SUM(CASE WHEN p.amount_cents > 0 AND p.posted_at >= $3 THEN p.amount_cents ELSE 0 END) AS n30, \
             SUM(CASE WHEN p.amount_cents > 0 AND p.posted_at >= $4 THEN p.amount_cents ELSE 0 END) AS n60, \
             SUM(CASE WHEN p.amount_cents > 0 AND p.posted_at >= $5 THEN p.amount_cents ELSE 0 END) AS n90, \
             SUM(CASE WHEN p.amount_cents > 0 AND p.posted_at >= $6 THEN p.amount_cents ELSE 0 END) AS n120 \
           FROM postings p \
           WHERE p.tenant_id = $1 AND p.ledger_account = 'PATIENT_AR' AND p.posted_at < $2 \
           GROUP BY p.account_id HAVING SUM(p.amount_cents) > 0), \
         capped AS ( \
           SELECT account_id, bal, \
             CASE WHEN bal < n30 THEN bal ELSE n30 END AS c30, \
             CASE WHEN bal < n60 THEN bal ELSE n60 END AS c60, \
             CASE WHEN bal < n90 THEN bal ELSE n90 END AS c90, \
             CASE WHEN bal < n120 THEN bal ELSE n120 END AS c120 \
           FROM ar), \
         matching AS ( \
           SELECT r.account_id, a.patient_ref, a.status, \
             CAST(r.c30 AS BIGINT) AS b0, CAST(r.c60 - r.c30 AS BIGINT) AS b1, \
             CAST(r.c90 - r.c60 AS BIGINT) AS b2, CAST(r.c120 - r.c90 AS BIGINT) AS b3, \
             CAST(r.bal - r.c120 AS BIGINT) AS b4 \
           FROM capped r JOIN accounts a ON a.tenant_id = $1 AND a.id = r.account_id \
           WHERE ($7 IS NULL OR a.status = $7) \
             AND ((r.c30 > 0 AND $8 <= 1) OR (r.c60 > r.c30 AND $8 <= 2) \
               OR (r.c90 > r.c60 AND $8 <= 3) OR (r.c120 > r.c90 AND $8 <= 4) \
               OR r.bal > r.c120)) "
    };
}

const AGING_TOTALS: &str = concat!(
    aging_by_account!(),
    "SELECT COUNT(*) AS accounts, CAST(SUM(b0) AS BIGINT) AS b0, CAST(SUM(b1) AS BIGINT) AS b1, \
     CAST(SUM(b2) AS BIGINT) AS b2, CAST(SUM(b3) AS BIGINT) AS b3, CAST(SUM(b4) AS BIGINT) AS b4 \
     FROM matching"
);

/// A page of rows, each carrying the totals over every matching account (window sums taken before
/// the page's cursor filter, so the ledger is aggregated once per call).
const AGING_PAGE: &str = concat!(
    aging_by_account!(),
    "SELECT account_id, patient_ref, status, b0, b1, b2, b3, b4, accounts, t0, t1, t2, t3, t4 \
     FROM (SELECT m.account_id, m.patient_ref, m.status, m.b0, m.b1, m.b2, m.b3, m.b4, \
       COUNT(*) OVER () AS accounts, CAST(SUM(m.b0) OVER () AS BIGINT) AS t0, \
       CAST(SUM(m.b1) OVER () AS BIGINT) AS t1, CAST(SUM(m.b2) OVER () AS BIGINT) AS t2, \
       CAST(SUM(m.b3) OVER () AS BIGINT) AS t3, CAST(SUM(m.b4) OVER () AS BIGINT) AS t4 \
       FROM matching m) x \
     WHERE ($9 IS NULL OR account_id > $9) ORDER BY account_id LIMIT $10"
);

/// The instants (unix microseconds, UTC) that bound the aging buckets as of a day.
struct AgingBounds {
    end: i64,
    d30: i64,
    d60: i64,
    d90: i64,
    d120: i64,
}

impl AgingBounds {
    fn new(as_of: NaiveDate) -> Result<Self, StoreError> {
        let start = |days_back: i64| -> Result<i64, StoreError> {
            as_of
                .checked_sub_signed(chrono::Duration::days(days_back))
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().timestamp_micros())
                .ok_or_else(|| {
                    StoreError::from(StorageError::Unstorable {
                        field: "as_of_date".into(),
                        reason: "is out of range".into(),
                    })
                })
        };
        Ok(Self {
            end: start(-1)?,
            d30: start(30)?,
            d60: start(60)?,
            d90: start(90)?,
            d120: start(120)?,
        })
    }
}

fn aging_of(b0: i64, b1: i64, b2: i64, b3: i64, b4: i64) -> Aging {
    Aging {
        days_0_30: Money::from_minor_units(b0),
        days_31_60: Money::from_minor_units(b1),
        days_61_90: Money::from_minor_units(b2),
        days_91_120: Money::from_minor_units(b3),
        days_over_120: Money::from_minor_units(b4),
    }
}

#[derive(sqlx::FromRow)]
struct AgingTotalsRow {
    accounts: i64,
    b0: Option<i64>,
    b1: Option<i64>,
    b2: Option<i64>,
    b3: Option<i64>,
    b4: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct AgingRowRow {
    account_id: String,
    patient_ref: String,
    status: String,
    b0: i64,
    b1: i64,
    b2: i64,
    b3: i64,
    b4: i64,
    accounts: i64,
    t0: i64,
    t1: i64,
    t2: i64,
    t3: i64,
    t4: i64,
}

impl AgingRowRow {
    fn into_model(self) -> Result<AgingRow, StoreError> {
        Ok(AgingRow {
            account_id: AccountId::parse(&self.account_id).map_err(|e| corrupt("account id", e))?,
            patient_ref: self.patient_ref,
            status: self
                .status
                .parse()
                .map_err(|e| corrupt("account status", e))?,
            aging: aging_of(self.b0, self.b1, self.b2, self.b3, self.b4),
        })
    }
}

/// Inserts an account (status OPEN, balance zero) with the given id in `tx`.
async fn insert_account(
    tx: &mut Tx,
    tenant: &TenantId,
    id: AccountId,
    account: &NewAccount,
) -> Result<Account, StoreError> {
    insert_accounts(tx, tenant, &[(id, account.clone())])
        .await?
        .pop()
        .ok_or_else(|| corrupt("account", "opened without an answer"))
}

/// Inserts accounts (status OPEN, balance zero) with the given ids in `tx`, with multi-row
/// statements.
async fn insert_accounts(
    tx: &mut Tx,
    tenant: &TenantId,
    accounts: &[(AccountId, NewAccount)],
) -> Result<Vec<Account>, StoreError> {
    // Stored precision is microseconds; the returned value equals a later read.
    let now = time::now_micros();
    let mut opened = Vec::with_capacity(accounts.len());
    for (id, account) in accounts {
        opened.push(Account {
            id: *id,
            tenant_id: tenant.clone(),
            patient_ref: account.patient_ref.clone(),
            guarantor_ref: account.guarantor_ref.clone(),
            status: AccountStatus::Open,
            balance: Money::ZERO,
            created_at: timestamp(now, "accounts.created_at")?,
            updated_at: timestamp(now, "accounts.updated_at")?,
            collection: CollectionState::default(),
        });
    }
    for chunk in opened.chunks(rows_chunk(tx)) {
        // $1 tenant, $2 status and $3 the time are shared; each row binds three values.
        let rows = (0..chunk.len())
            .map(|i| format!("($1, {}, $2, $3, $3)", placeholders(4 + 3 * i, 3)))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO accounts (tenant_id, id, patient_ref, guarantor_ref, status, \
             created_at, updated_at) VALUES {rows}"
        );
        let ids: Vec<String> = chunk.iter().map(|a| a.id.to_string()).collect();
        with_tx!(tx, |conn| {
            let mut q = sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(tenant.as_str())
                .bind(AccountStatus::Open.as_str())
                .bind(now);
            for (a, id) in chunk.iter().zip(&ids) {
                q = q.bind(id).bind(&a.patient_ref).bind(&a.guarantor_ref);
            }
            q.execute(&mut *conn).await?;
        });
    }
    Ok(opened)
}

/// Rows per multi-row statement in `tx`, of at most ten bound values each: small on SQLite (see
/// `medbill_storage::filters::SQLITE_BINDS_PER_STATEMENT`), large on PostgreSQL (a round trip
/// each).
fn rows_chunk(tx: &Tx) -> usize {
    match tx.backend() {
        Backend::Postgres => 500,
        Backend::Sqlite => medbill_storage::filters::sqlite_rows_per_statement(10),
    }
}

/// `n` rows for a multi-row INSERT whose first column is the tenant (`$1`), each binding
/// `width` more values numbered from `$2`: `($1, $2, $3), ($1, $4, $5)`.
fn value_rows(n: usize, width: usize) -> String {
    (0..n)
        .map(|i| format!("($1, {})", placeholders(2 + width * i, width)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The ids among `ids` of the tenant's accounts, read in `tx`.
async fn existing_accounts(
    tx: &mut Tx,
    tenant: &TenantId,
    ids: &[AccountId],
) -> Result<std::collections::HashSet<String>, StoreError> {
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let mut found = std::collections::HashSet::new();
    for chunk in ids.chunks(rows_chunk(tx)) {
        let sql = format!(
            "SELECT id FROM accounts WHERE tenant_id = $1 AND id IN ({})",
            placeholders(2, chunk.len())
        );
        let rows: Vec<String> = with_tx!(tx, |conn| {
            let mut q = sqlx::query_scalar(AssertSqlSafe(sql.clone()))
                .persistent(false)
                .bind(tenant.as_str());
            for id in chunk {
                q = q.bind(id);
            }
            q.fetch_all(&mut *conn).await?
        });
        found.extend(rows);
    }
    Ok(found)
}

/// The accounts chosen before for postings to the patients `patient_refs`, by patient.
async fn default_accounts(
    tx: &mut Tx,
    tenant: &TenantId,
    patient_refs: &[&str],
) -> Result<HashMap<String, AccountId>, StoreError> {
    account_by_patient(tx, tenant, patient_refs, "default account id", |ins| {
        format!(
            "SELECT patient_ref, account_id FROM patient_default_accounts \
             WHERE tenant_id = $1 AND patient_ref IN ({ins})"
        )
    })
    .await
}

/// Each patient's oldest account not CLOSED, by patient (a patient with none is absent).
async fn oldest_open_accounts(
    tx: &mut Tx,
    tenant: &TenantId,
    patient_refs: &[&str],
) -> Result<HashMap<String, AccountId>, StoreError> {
    account_by_patient(tx, tenant, patient_refs, "account id", |ins| {
        format!(
            "SELECT patient_ref, MIN(id) FROM accounts WHERE tenant_id = $1 \
             AND patient_ref IN ({ins}) AND status <> 'CLOSED' GROUP BY patient_ref"
        )
    })
    .await
}

/// Runs `select` (given the placeholders `$2, ..` of a chunk of `patient_refs`; `$1` is the
/// tenant) a chunk at a time and gathers its (patient, account id) rows; `what` names the id in
/// an error.
async fn account_by_patient(
    tx: &mut Tx,
    tenant: &TenantId,
    patient_refs: &[&str],
    what: &'static str,
    select: impl Fn(&str) -> String,
) -> Result<HashMap<String, AccountId>, StoreError> {
    let mut found = HashMap::new();
    for chunk in patient_refs.chunks(rows_chunk(tx)) {
        let sql = select(&placeholders(2, chunk.len()));
        let rows: Vec<(String, String)> = with_tx!(tx, |conn| {
            let mut q = sqlx::query_as(AssertSqlSafe(sql.clone()))
                .persistent(false)
                .bind(tenant.as_str());
            for p in chunk {
                q = q.bind(*p);
            }
            q.fetch_all(&mut *conn).await?
        });
        for (patient, id) in rows {
            let id = AccountId::parse(&id).map_err(|e| corrupt(what, e))?;
            found.insert(patient, id);
        }
    }
    Ok(found)
}

fn corrupt(what: &'static str, detail: impl ToString) -> StoreError {
    StoreError::from(StorageError::corrupt(what, detail.to_string()))
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    tenant_id: String,
    id: String,
    patient_ref: String,
    guarantor_ref: Option<String>,
    status: String,
    created_at: i64,
    updated_at: i64,
    first_statement_date: Option<String>,
    last_statement_date: Option<String>,
    payment_plan_id: Option<String>,
    payment_plan_status: Option<String>,
    balance_cents: i64,
}

impl AccountRow {
    fn into_model(self) -> Result<Account, StoreError> {
        Ok(Account {
            id: AccountId::parse(&self.id).map_err(|e| corrupt("account id", e))?,
            tenant_id: TenantId::parse(&self.tenant_id).map_err(|e| corrupt("tenant id", e))?,
            patient_ref: self.patient_ref,
            guarantor_ref: self.guarantor_ref,
            status: self
                .status
                .parse()
                .map_err(|e| corrupt("account status", e))?,
            balance: Money::from_minor_units(self.balance_cents),
            created_at: timestamp(self.created_at, "accounts.created_at")?,
            updated_at: timestamp(self.updated_at, "accounts.updated_at")?,
            collection: CollectionState {
                first_statement_date: optional_date(
                    self.first_statement_date.as_deref(),
                    "accounts.first_statement_date",
                )?,
                last_statement_date: optional_date(
                    self.last_statement_date.as_deref(),
                    "accounts.last_statement_date",
                )?,
                payment_plan: match (self.payment_plan_id, self.payment_plan_status) {
                    (Some(id), Some(status)) => Some((
                        PaymentPlanId::parse(&id).map_err(|e| corrupt("payment plan id", e))?,
                        status
                            .parse()
                            .map_err(|e| corrupt("payment plan status", e))?,
                    )),
                    _ => None,
                },
            },
        })
    }
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    tenant_id: String,
    id: String,
    account_id: String,
    kind: String,
    memo: String,
    source_ref: Option<String>,
    posted_at: i64,
    idempotency_key: Option<String>,
}

#[derive(sqlx::FromRow)]
struct PostingRow {
    entry_id: String,
    #[allow(dead_code)]
    line_no: i64,
    ledger_account: String,
    amount_cents: i64,
    claim_ref: Option<String>,
}

impl EntryRow {
    fn into_model(
        self,
        postings: Vec<PostingRow>,
        payer_type: Option<String>,
    ) -> Result<JournalEntry, StoreError> {
        let postings = postings
            .into_iter()
            .map(|p| {
                Ok(Posting {
                    ledger_account: p
                        .ledger_account
                        .parse::<LedgerAccount>()
                        .map_err(|e| corrupt("ledger account", e))?,
                    amount: Money::from_minor_units(p.amount_cents),
                    claim: claim_ref(p.claim_ref.as_deref())?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(JournalEntry {
            id: JournalEntryId::parse(&self.id).map_err(|e| corrupt("journal entry id", e))?,
            tenant_id: TenantId::parse(&self.tenant_id).map_err(|e| corrupt("tenant id", e))?,
            account_id: AccountId::parse(&self.account_id).map_err(|e| corrupt("account id", e))?,
            kind: self
                .kind
                .parse()
                .map_err(|e| corrupt("journal entry kind", e))?,
            memo: self.memo,
            source_ref: self.source_ref,
            posted_at: timestamp(self.posted_at, "journal_entries.posted_at")?,
            idempotency_key: self.idempotency_key,
            payer_type: payer_type
                .map(|t| t.parse().map_err(|e| corrupt("payer type", e)))
                .transpose()?,
            postings,
        })
    }
}

/// Joins entry headers with their postings and payers (each list read for one account).
fn assemble_entries(
    headers: Vec<EntryRow>,
    postings: Vec<PostingRow>,
    payers: Vec<(String, String)>,
) -> Result<Vec<JournalEntry>, StoreError> {
    let mut payers: std::collections::HashMap<String, String> = payers.into_iter().collect();
    let mut by_entry: std::collections::HashMap<String, Vec<PostingRow>> =
        std::collections::HashMap::new();
    for p in postings {
        by_entry.entry(p.entry_id.clone()).or_default().push(p);
    }
    headers
        .into_iter()
        .map(|h| {
            let mine = by_entry.remove(&h.id).unwrap_or_default();
            let payer = payers.remove(&h.id);
            h.into_model(mine, payer)
        })
        .collect()
}

fn optional_date(text: Option<&str>, what: &'static str) -> Result<Option<NaiveDate>, StoreError> {
    Ok(text.map(|t| rows::date(t, what)).transpose()?)
}

fn claim_ref(text: Option<&str>) -> Result<Option<ClaimId>, StoreError> {
    text.map(|t| ClaimId::parse(t).map_err(|e| corrupt("posting claim", e)))
        .transpose()
}
