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
use medbill_domain::{AccountId, IdempotencyKey, JournalEntryId, Money, TenantId};
use medbill_runtime::ErrorCode;
use medbill_storage::rows::timestamp;
use medbill_storage::{Database, StorageError, Tx, time, with_db, with_tx};
use sqlx::migrate::Migrator;
use tonic::Code;

use crate::model::{
    Account, AccountFilter, AccountStatus, JournalEntry, LedgerAccount, LedgerError, NewAccount,
    NewJournalEntry, Posting,
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
pub trait CollectionsStore: Send + Sync {
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
macro_rules! select_accounts {
    () => {
        "SELECT a.tenant_id, a.id, a.patient_ref, a.guarantor_ref, a.status, a.created_at, \
         a.updated_at, CAST(COALESCE((SELECT SUM(p.amount_cents) FROM postings p \
         JOIN journal_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id \
         WHERE e.tenant_id = a.tenant_id AND e.account_id = a.id \
         AND p.ledger_account = 'PATIENT_AR'), 0) AS BIGINT) AS balance_cents FROM accounts a "
    };
}

const SELECT_ACCOUNT: &str = concat!(select_accounts!(), "WHERE a.tenant_id = $1 AND a.id = $2");

const SELECT_ACCOUNT_PAGE: &str = concat!(
    select_accounts!(),
    "WHERE a.tenant_id = $1 AND ($2 IS NULL OR a.status = $2) \
     AND ($3 IS NULL OR a.patient_ref = $3) AND ($4 IS NULL OR a.id > $4) ORDER BY a.id LIMIT $5"
);

impl SqlCollectionsStore {
    /// Wraps a migrated database.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

const SELECT_ACCOUNT_ENTRIES: &str = "SELECT tenant_id, id, account_id, kind, memo, source_ref, posted_at, \
     idempotency_key FROM journal_entries WHERE tenant_id = $1 AND account_id = $2 ORDER BY id";

const SELECT_ACCOUNT_POSTINGS: &str = "SELECT p.entry_id, p.line_no, p.ledger_account, p.amount_cents \
     FROM postings p JOIN journal_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id \
     WHERE e.tenant_id = $1 AND e.account_id = $2 ORDER BY p.entry_id, p.line_no";

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
        // Stored precision is microseconds; the returned value equals a later read.
        let now = time::now_micros();
        let opened = Account {
            id: AccountId::new(),
            tenant_id: tenant.clone(),
            patient_ref: account.patient_ref.clone(),
            guarantor_ref: account.guarantor_ref.clone(),
            status: AccountStatus::Open,
            balance: Money::ZERO,
            created_at: timestamp(now, "accounts.created_at")?,
            updated_at: timestamp(now, "accounts.updated_at")?,
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
        let rows: Vec<AccountRow> = with_db!(self.db, |pool| {
            sqlx::query_as(SELECT_ACCOUNT_PAGE)
                .bind(tenant.as_str())
                .bind(filter.status.map(AccountStatus::as_str))
                .bind(filter.patient_ref.as_deref())
                .bind(after.as_deref())
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
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
            postings: entry.postings.clone(),
        };
        let entry_id = posted.id.to_string();
        // Postings first, entry row last: the entry's insert trigger verifies the balance of
        // the postings already written (see the migrations).
        for (i, (posting, c)) in entry.postings.iter().zip(&cents).enumerate() {
            let line_no = i64::try_from(i + 1).unwrap_or(i64::MAX);
            with_tx!(tx, |conn| {
                sqlx::query(
                    "INSERT INTO postings (tenant_id, entry_id, line_no, ledger_account, amount_cents) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(tenant.as_str())
                .bind(&entry_id)
                .bind(line_no)
                .bind(posting.ledger_account.as_str())
                .bind(*c)
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
        let mut by_entry: std::collections::HashMap<String, Vec<PostingRow>> =
            std::collections::HashMap::new();
        for p in postings {
            by_entry.entry(p.entry_id.clone()).or_default().push(p);
        }
        headers
            .into_iter()
            .map(|h| {
                let mine = by_entry.remove(&h.id).unwrap_or_default();
                h.into_model(mine)
            })
            .collect()
    }
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
}

impl EntryRow {
    fn into_model(self, postings: Vec<PostingRow>) -> Result<JournalEntry, StoreError> {
        let postings = postings
            .into_iter()
            .map(|p| {
                Ok(Posting {
                    ledger_account: p
                        .ledger_account
                        .parse::<LedgerAccount>()
                        .map_err(|e| corrupt("ledger account", e))?,
                    amount: Money::from_minor_units(p.amount_cents),
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
            postings,
        })
    }
}
