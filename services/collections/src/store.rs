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
use chrono::{DateTime, Utc};
use medbill_domain::{AccountId, IdempotencyKey, JournalEntryId, Money, TenantId};
use medbill_storage::idempotency::{self, Fingerprint, IdClaim};
use medbill_storage::{Database, StorageError, Tx, time, with_db, with_tx};
use sqlx::migrate::Migrator;

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

/// The idempotency scope of opening an account.
pub const OPEN_ACCOUNT_SCOPE: &str = "collections.OpenAccount";

/// The idempotency scope of posting a journal entry.
pub const POST_ENTRY_SCOPE: &str = "collections.PostJournalEntry";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The idempotency key was already used for a different request.
    #[error("idempotency key {key:?} was already used with a different request")]
    IdempotencyKeyReused {
        /// The reused key.
        key: String,
    },
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

impl StoreError {
    /// Returns true when retrying the whole operation may succeed (lock timeouts, busy database).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Storage(e) if e.is_retryable())
    }
}

/// Stores patient accounts and their ledger, every operation scoped to one tenant.
#[async_trait]
pub trait CollectionsStore: Send + Sync {
    /// Opens an account (status OPEN, balance zero) once per `(tenant, key)`: a retry with the
    /// same key and fields returns the account opened first and writes nothing; the same key
    /// with different fields is [`StoreError::IdempotencyKeyReused`].
    async fn open_account(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
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

    /// Posts a balanced journal entry to one of the tenant's accounts, once per `(tenant, key)`.
    ///
    /// An unbalanced entry is [`StoreError::Ledger`] and writes nothing; an unknown account is
    /// [`StoreError::AccountNotFound`]. A retry with the same key and entry returns the entry
    /// posted first; the same key with a different entry is [`StoreError::IdempotencyKeyReused`].
    async fn post_journal_entry(
        &self,
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

    async fn account_in(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<Account>, StoreError> {
        let row: Option<AccountRow> = with_tx!(tx, |conn| {
            sqlx::query_as(SELECT_ACCOUNT)
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        });
        row.map(AccountRow::into_model).transpose()
    }

    async fn entry_in(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<JournalEntry>, StoreError> {
        let header: Option<EntryRow> = with_tx!(tx, |conn| {
            sqlx::query_as(SELECT_ENTRY)
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        });
        let Some(header) = header else {
            return Ok(None);
        };
        let postings: Vec<PostingRow> = with_tx!(tx, |conn| {
            sqlx::query_as(SELECT_ENTRY_POSTINGS)
                .bind(tenant.as_str())
                .bind(id)
                .fetch_all(&mut *conn)
                .await?
        });
        header.into_model(postings).map(Some)
    }
}

const SELECT_ENTRY: &str = "SELECT tenant_id, id, account_id, kind, memo, source_ref, posted_at, \
     idempotency_key \
     FROM journal_entries WHERE tenant_id = $1 AND id = $2";

const SELECT_ENTRY_POSTINGS: &str = "SELECT entry_id, line_no, ledger_account, amount_cents \
     FROM postings WHERE tenant_id = $1 AND entry_id = $2 ORDER BY line_no";

const SELECT_ACCOUNT_ENTRIES: &str = "SELECT tenant_id, id, account_id, kind, memo, source_ref, posted_at, \
     idempotency_key FROM journal_entries WHERE tenant_id = $1 AND account_id = $2 ORDER BY id";

const SELECT_ACCOUNT_POSTINGS: &str = "SELECT p.entry_id, p.line_no, p.ledger_account, p.amount_cents \
     FROM postings p JOIN journal_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id \
     WHERE e.tenant_id = $1 AND e.account_id = $2 ORDER BY p.entry_id, p.line_no";

#[async_trait]
impl CollectionsStore for SqlCollectionsStore {
    async fn open_account(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        account: &NewAccount,
    ) -> Result<Account, StoreError> {
        let mut tx = self.db.begin().await?;
        let fingerprint = Fingerprint::of(&canonical_bytes(&[
            Some(account.patient_ref.as_str()),
            account.guarantor_ref.as_deref(),
        ]));
        let claim = idempotency::claim_id(
            &mut tx,
            tenant.as_str(),
            OPEN_ACCOUNT_SCOPE,
            key.as_str(),
            &fingerprint,
        )
        .await?;
        match claim {
            IdClaim::Conflict => Err(StoreError::IdempotencyKeyReused {
                key: key.as_str().to_owned(),
            }),
            IdClaim::Replay(id) => {
                let found = self.account_in(&mut tx, tenant, &id).await?;
                tx.rollback().await?;
                found.ok_or_else(|| idempotency::replayed_entity_missing("account", &id).into())
            }
            IdClaim::New(pending) => {
                // Stored precision is microseconds; the returned value equals a later read.
                let now = time::now_micros();
                let opened = Account {
                    id: AccountId::new(),
                    tenant_id: tenant.clone(),
                    patient_ref: account.patient_ref.clone(),
                    guarantor_ref: account.guarantor_ref.clone(),
                    status: AccountStatus::Open,
                    balance: Money::ZERO,
                    created_at: from_micros(now)?,
                    updated_at: from_micros(now)?,
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
                idempotency::complete(&mut tx, pending, id.as_bytes()).await?;
                tx.commit().await?;
                Ok(opened)
            }
        }
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
        tenant: &TenantId,
        key: &IdempotencyKey,
        entry: &NewJournalEntry,
    ) -> Result<JournalEntry, StoreError> {
        // Checked before any I/O: an unbalanced entry never reaches the database.
        let cents = entry.balanced_cents()?;
        let mut canonical: Vec<Option<String>> = vec![
            Some(entry.account_id.to_string()),
            Some(entry.kind.as_str().to_owned()),
            Some(entry.memo.clone()),
            entry.source_ref.clone(),
        ];
        for (posting, c) in entry.postings.iter().zip(&cents) {
            canonical.push(Some(posting.ledger_account.as_str().to_owned()));
            canonical.push(Some(c.to_string()));
        }
        let fields: Vec<Option<&str>> = canonical.iter().map(Option::as_deref).collect();
        let fingerprint = Fingerprint::of(&canonical_bytes(&fields));

        let mut tx = self.db.begin().await?;
        let claim = idempotency::claim_id(
            &mut tx,
            tenant.as_str(),
            POST_ENTRY_SCOPE,
            key.as_str(),
            &fingerprint,
        )
        .await?;
        let pending = match claim {
            IdClaim::Conflict => {
                return Err(StoreError::IdempotencyKeyReused {
                    key: key.as_str().to_owned(),
                });
            }
            IdClaim::Replay(id) => {
                let found = self.entry_in(&mut tx, tenant, &id).await?;
                tx.rollback().await?;
                return found.ok_or_else(|| {
                    idempotency::replayed_entity_missing("journal entry", &id).into()
                });
            }
            IdClaim::New(pending) => pending,
        };

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
            posted_at: from_micros(now)?,
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
        with_tx!(tx, |conn| {
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
            .await?;
            // The account's activity changes what it owes; keep updated_at meaningful.
            sqlx::query("UPDATE accounts SET updated_at = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(&account_id)
                .bind(now)
                .execute(&mut *conn)
                .await?;
        });
        idempotency::complete(&mut tx, pending, entry_id.as_bytes()).await?;
        tx.commit().await?;
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

/// Encodes request fields for an idempotency fingerprint, each length-prefixed so adjacent
/// fields cannot run into each other and absent differs from empty.
fn canonical_bytes(fields: &[Option<&str>]) -> Vec<u8> {
    let mut out = Vec::new();
    for field in fields {
        match field {
            None => out.push(0u8),
            Some(text) => {
                out.push(1u8);
                out.extend_from_slice(&(text.len() as u64).to_le_bytes());
                out.extend_from_slice(text.as_bytes());
            }
        }
    }
    out
}

fn from_micros(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    time::from_micros(micros).ok_or_else(|| {
        StoreError::from(StorageError::corrupt(
            "timestamp",
            format!("{micros} microseconds is out of range"),
        ))
    })
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
            created_at: from_micros(self.created_at)?,
            updated_at: from_micros(self.updated_at)?,
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
            posted_at: from_micros(self.posted_at)?,
            idempotency_key: self.idempotency_key,
            postings,
        })
    }
}
