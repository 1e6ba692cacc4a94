//! Persistence of patient accounts and their double-entry ledger: the [`CollectionsStore`] trait
//! and its one implementation over PostgreSQL and SQLite ([`SqlCollectionsStore`], written once
//! with portable SQL through `medbill_storage`'s `with_tx!`/`with_db!`).
//!
//! The ledger invariant (two or more postings summing to zero per entry) is checked twice:
//! here, before anything is written ([`NewJournalEntry::balanced_cents`]), and by the database
//! itself (a trigger on `journal_entries`, see the migrations), so no code path can commit an
//! unbalanced entry.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use medbill_domain::{
    AccountId, ClaimId, IdempotencyKey, JournalEntryId, Money, PaymentPlanId, TenantId,
};
use medbill_runtime::ErrorCode;
use medbill_storage::rows::{self, timestamp};
use medbill_storage::{Database, StorageError, Tx, time, with_db, with_tx};
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
    ) -> Result<JournalEntry, StoreError>;

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
    ) -> Result<Account, StoreError>;

    /// Returns the patient's account for postings that name none, locked as by
    /// [`lock_account`](Self::lock_account): the one chosen before, else the patient's oldest
    /// account not CLOSED, else a new one. Concurrent first calls for a patient choose one
    /// account.
    async fn patient_account(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        patient_ref: &str,
    ) -> Result<Account, StoreError>;

    /// Returns the account's `PATIENT_AR` balance per claim (unallocated amounts under `None`),
    /// oldest first by the claim's first posting, read in `tx`.
    async fn claim_balances(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
    ) -> Result<Vec<ClaimBalance>, StoreError>;

    /// Returns the patient responsibility posted so far for `claim` on the account (its
    /// responsibility and reversal entries), read in `tx`.
    async fn claim_responsibility(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
        claim: &ClaimId,
    ) -> Result<Money, StoreError>;

    /// Records how a payment came (payer, method, reference) next to its journal entry.
    async fn insert_payment(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        payment: &NewPayment,
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

    async fn post_journal_entry(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        key: &IdempotencyKey,
        entry: &NewJournalEntry,
    ) -> Result<JournalEntry, StoreError> {
        // Checked before any I/O: an unbalanced entry never reaches the database.
        let cents = entry.balanced_cents()?;
        let account_id = entry.account_id.to_string();
        let exists: Option<String> = with_tx!(tx, |conn| {
            sqlx::query_scalar("SELECT id FROM accounts WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(&account_id)
                .fetch_optional(&mut *conn)
                .await?
        });
        if exists.is_none() {
            return Err(StoreError::AccountNotFound(entry.account_id));
        }

        let now = time::now_micros();
        let posted = JournalEntry {
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
        };
        let entry_id = posted.id.to_string();
        // Postings first, entry row last: the entry's insert trigger verifies the balance of
        // the postings already written (see the migrations).
        for (i, (posting, c)) in entry.postings.iter().zip(&cents).enumerate() {
            let line_no = i64::try_from(i + 1).unwrap_or(i64::MAX);
            with_tx!(tx, |conn| {
                sqlx::query(
                    "INSERT INTO postings (tenant_id, entry_id, line_no, ledger_account, amount_cents, \
                     claim_ref, account_id, posted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(tenant.as_str())
                .bind(&entry_id)
                .bind(line_no)
                .bind(posting.ledger_account.as_str())
                .bind(*c)
                .bind(posting.claim.map(|c| c.to_string()))
                .bind(&account_id)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            });
        }
        let inserted = with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO journal_entries (tenant_id, id, account_id, kind, memo, source_ref, \
                 posted_at, idempotency_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(tenant.as_str())
            .bind(&entry_id)
            .bind(&account_id)
            .bind(entry.kind.as_str())
            .bind(&entry.memo)
            .bind(&entry.source_ref)
            .bind(now)
            .bind(key.as_str())
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected())
        });
        if let Err(e) = inserted {
            // A fresh UUID v7 cannot collide: the unique key broken is (tenant, idempotency_key).
            if medbill_storage::error::is_unique_violation(&e) {
                return Err(StoreError::DuplicateEntryKey(key.as_str().to_owned()));
            }
            return Err(e.into());
        }
        with_tx!(tx, |conn| {
            // The account's activity changes what it owes; keep updated_at meaningful.
            sqlx::query("UPDATE accounts SET updated_at = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(&account_id)
                .bind(now)
                .execute(&mut *conn)
                .await?;
        });
        Ok(posted)
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

    async fn lock_account(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        id: &AccountId,
    ) -> Result<Account, StoreError> {
        let id_text = id.to_string();
        let now = time::now_micros();
        // The row lock (PostgreSQL) serialises postings to the account; SQLite's Tx already
        // holds the write lock.
        let touched = with_tx!(tx, |conn| {
            sqlx::query("UPDATE accounts SET updated_at = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(&id_text)
                .bind(now)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        });
        if touched == 0 {
            return Err(StoreError::AccountNotFound(*id));
        }
        let row: Option<AccountRow> = with_tx!(tx, |conn| {
            sqlx::query_as(SELECT_ACCOUNT)
                .bind(tenant.as_str())
                .bind(&id_text)
                .fetch_optional(&mut *conn)
                .await?
        });
        row.map(AccountRow::into_model)
            .transpose()?
            .ok_or(StoreError::AccountNotFound(*id))
    }

    async fn patient_account(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        patient_ref: &str,
    ) -> Result<Account, StoreError> {
        let chosen: Option<String> = with_tx!(tx, |conn| {
            sqlx::query_scalar(
                "SELECT account_id FROM patient_default_accounts \
                 WHERE tenant_id = $1 AND patient_ref = $2",
            )
            .bind(tenant.as_str())
            .bind(patient_ref)
            .fetch_optional(&mut *conn)
            .await?
        });
        if let Some(id) = chosen {
            let id = AccountId::parse(&id).map_err(|e| corrupt("default account id", e))?;
            return self.lock_account(tx, tenant, &id).await;
        }
        let existing: Option<String> = with_tx!(tx, |conn| {
            sqlx::query_scalar(
                "SELECT id FROM accounts WHERE tenant_id = $1 AND patient_ref = $2 \
                 AND status <> 'CLOSED' ORDER BY id LIMIT 1",
            )
            .bind(tenant.as_str())
            .bind(patient_ref)
            .fetch_optional(&mut *conn)
            .await?
        });
        let candidate = match &existing {
            Some(id) => AccountId::parse(id).map_err(|e| corrupt("account id", e))?,
            None => AccountId::new(),
        };
        // A concurrent first posting for the same patient waits here (PostgreSQL) and then
        // finds the other's choice.
        let chosen: String = with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO patient_default_accounts (tenant_id, patient_ref, account_id) \
                 VALUES ($1, $2, $3) ON CONFLICT (tenant_id, patient_ref) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(patient_ref)
            .bind(candidate.to_string())
            .execute(&mut *conn)
            .await?;
            sqlx::query_scalar(
                "SELECT account_id FROM patient_default_accounts \
                 WHERE tenant_id = $1 AND patient_ref = $2",
            )
            .bind(tenant.as_str())
            .bind(patient_ref)
            .fetch_one(&mut *conn)
            .await?
        });
        let chosen = AccountId::parse(&chosen).map_err(|e| corrupt("default account id", e))?;
        if chosen == candidate && existing.is_none() {
            let new = NewAccount {
                patient_ref: patient_ref.to_owned(),
                guarantor_ref: None,
            };
            insert_account(tx, tenant, chosen, &new).await?;
        }
        self.lock_account(tx, tenant, &chosen).await
    }

    async fn claim_balances(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
    ) -> Result<Vec<ClaimBalance>, StoreError> {
        let rows: Vec<(Option<String>, Option<i64>, i64)> = with_tx!(tx, |conn| {
            sqlx::query_as(SELECT_CLAIM_BALANCES)
                .bind(tenant.as_str())
                .bind(account_id.to_string())
                .fetch_all(&mut *conn)
                .await?
        });
        let mut balances = Vec::with_capacity(rows.len());
        for (claim, first_posted, cents) in rows {
            // A claim with postings on other ledger accounts only owes the patient nothing.
            let Some(first_posted) = first_posted else {
                continue;
            };
            balances.push(ClaimBalance {
                claim: claim_ref(claim.as_deref())?,
                first_posted,
                balance: Money::from_minor_units(cents),
            });
        }
        balances.sort_by_key(|b| b.first_posted);
        Ok(balances)
    }

    async fn claim_responsibility(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
        claim: &ClaimId,
    ) -> Result<Money, StoreError> {
        let cents: i64 = with_tx!(tx, |conn| {
            sqlx::query_scalar(
                "SELECT CAST(COALESCE(SUM(CASE WHEN p.ledger_account = 'PATIENT_AR' \
                 AND p.claim_ref = $3 THEN p.amount_cents ELSE 0 END), 0) AS BIGINT) \
                 FROM journal_entries e CROSS JOIN postings p \
                 WHERE p.tenant_id = e.tenant_id AND p.entry_id = e.id \
                 AND e.tenant_id = $1 AND e.account_id = $2 \
                 AND e.kind IN ('PATIENT_RESPONSIBILITY', 'REVERSAL')",
            )
            .bind(tenant.as_str())
            .bind(account_id.to_string())
            .bind(claim.to_string())
            .fetch_one(&mut *conn)
            .await?
        });
        Ok(Money::from_minor_units(cents))
    }

    async fn insert_payment(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        payment: &NewPayment,
    ) -> Result<(), StoreError> {
        let cents = rows::cents(payment.amount, "amount")?;
        let now = time::now_micros();
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO payments (tenant_id, id, account_id, entry_id, payer_type, payer_ref, \
                 method, reference, received_date, amount_cents, claim_ref, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(tenant.as_str())
            .bind(payment.id.to_string())
            .bind(payment.account_id.to_string())
            .bind(payment.entry_id.to_string())
            .bind(payment.payer_type.as_str())
            .bind(payment.payer_ref.as_deref())
            .bind(payment.method.as_str())
            .bind(payment.reference.as_deref())
            .bind(payment.received_date.to_string())
            .bind(cents)
            .bind(payment.claim.map(|c| c.to_string()))
            .bind(now)
            .execute(&mut *conn)
            .await?;
        });
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

    async fn insert_responsibility(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        r: &NewResponsibility,
    ) -> Result<(), StoreError> {
        let entry_id = r.entry_id.to_string();
        let total_charge = r
            .total_charge
            .map(|m| rows::cents(m, "total_charge"))
            .transpose()?;
        let payer_paid = r
            .payer_paid
            .map(|m| rows::cents(m, "payer_paid"))
            .transpose()?;
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO responsibility_entries (tenant_id, entry_id, claim_ref, era_id, \
                 patient_control_number, service_date, corrected, total_charge_cents, \
                 payer_paid_cents) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(tenant.as_str())
            .bind(&entry_id)
            .bind(r.claim.map(|c| c.to_string()))
            .bind(r.era_id.map(|e| e.to_string()))
            .bind(r.patient_control_number.as_deref())
            .bind(r.service_date.map(|d| d.to_string()))
            .bind(r.corrected)
            .bind(total_charge)
            .bind(payer_paid)
            .execute(&mut *conn)
            .await?;
        });
        for (i, line) in r.lines.iter().enumerate() {
            let cents = rows::cents(line.amount, "adjustments.amount")?;
            let line_no = i64::try_from(i + 1).unwrap_or(i64::MAX);
            with_tx!(tx, |conn| {
                sqlx::query(
                    "INSERT INTO responsibility_lines (tenant_id, entry_id, line_no, group_code, \
                     reason, amount_cents) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(tenant.as_str())
                .bind(&entry_id)
                .bind(line_no)
                .bind(&line.group)
                .bind(&line.reason)
                .bind(cents)
                .execute(&mut *conn)
                .await?;
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

const SELECT_CLAIM_BALANCES: &str = "SELECT p.claim_ref, \
     MIN(CASE WHEN p.ledger_account = 'PATIENT_AR' THEN e.posted_at END) AS first_posted, \
     CAST(COALESCE(SUM(CASE WHEN p.ledger_account = 'PATIENT_AR' THEN p.amount_cents ELSE 0 END), 0) \
     AS BIGINT) AS cents FROM journal_entries e CROSS JOIN postings p \
     WHERE p.tenant_id = e.tenant_id AND p.entry_id = e.id \
     AND e.tenant_id = $1 AND e.account_id = $2 GROUP BY p.claim_ref";

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
    // Stored precision is microseconds; the returned value equals a later read.
    let now = time::now_micros();
    let opened = Account {
        id,
        tenant_id: tenant.clone(),
        patient_ref: account.patient_ref.clone(),
        guarantor_ref: account.guarantor_ref.clone(),
        status: AccountStatus::Open,
        balance: Money::ZERO,
        created_at: timestamp(now, "accounts.created_at")?,
        updated_at: timestamp(now, "accounts.updated_at")?,
        collection: CollectionState::default(),
    };
    let id = opened.id.to_string();
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO accounts (tenant_id, id, patient_ref, guarantor_ref, status, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(tenant.as_str())
        .bind(&id)
        .bind(&opened.patient_ref)
        .bind(&opened.guarantor_ref)
        .bind(opened.status.as_str())
        .bind(now)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    });
    Ok(opened)
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
