//! Persistence of ERAs: the [`EraStore`] trait and its one implementation, [`SqlEraStore`], whose queries
//! are written once and run on PostgreSQL and SQLite (see `medbill_storage`'s store pattern).
//!
//! An ingest writes in the caller's transaction (the RPC's, which also holds its idempotency key): the
//! file with its raw bytes ([`EraStore::store_file`]), then each ERA (one per 835 set) with its balance
//! problems and provider adjustments ([`EraStore::add_era`]), together or not at all
//! (see [`crate::intake`]). The same content (by SHA-256) received again, under any key, is the same
//! file: nothing new is written and the file's ERAs are returned.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use medbill_domain::{EraId, TenantId, format_iso_date};
use medbill_runtime::ErrorCode;
use medbill_storage::rows::{cents, code, date, money, timestamp};
use medbill_storage::{Database, StorageError, Tx, time, with_db, with_tx};
use sqlx::migrate::Migrator;
use thiserror::Error;
use tonic::Code;

use crate::deposits::ReconciliationStatus;
use crate::model::{
    BalanceLevel, BalanceProblem, Era, EraFile, EraFileId, EraFilter, EraStatus, EraSummary,
    NewEra, PostingStatus, ProviderAdjustment,
};
use crate::upload::Upload;

mod denials;
mod deposits;
mod payments;

pub use denials::DenialStore;
pub use deposits::DepositStore;
pub use payments::{PaymentStore, PostingMethod, PostingOutcome};

/// Most bytes of a received file stored in one row of `era_file_chunks`.
const FILE_CHUNK: usize = 1024 * 1024;

/// The PostgreSQL migrations of the remittance service.
pub static PG_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");
/// The SQLite migrations of the remittance service.
pub static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// The storage namespace (PostgreSQL schema, SQLite file suffix) of the remittance service.
pub const NAMESPACE: &str = "remittance";

/// Errors of the ERA store; each names what is wrong precisely and declares its gRPC code.
#[derive(Debug, Error)]
pub enum EraStoreError {
    /// A value cannot be stored (e.g. an amount that is not whole cents).
    #[error("{field}: {message}")]
    Invalid {
        /// Which value.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The 835 reader stopped before the end of the file (a panic or a cancelled task).
    #[error("the 835 reader stopped: {0}")]
    Reader(String),
    /// A streamed upload's temporary file could not be written or read (a full or missing
    /// temporary directory).
    #[error("the upload's temporary file failed: {0}")]
    Spool(String),
    /// A concurrent change won (a payment or ERA is no longer in the state read).
    #[error("{0}")]
    Conflict(String),
    /// The ERA or claim payment is not in a state that allows the change.
    #[error("{0}")]
    Precondition(String),
}

impl ErrorCode for EraStoreError {
    fn error_code(&self) -> Code {
        match self {
            Self::Invalid { .. } => Code::InvalidArgument,
            Self::Storage(e) => e.error_code(),
            Self::Reader(_) => Code::Internal,
            Self::Spool(_) => Code::Unavailable,
            Self::Conflict(_) => Code::Aborted,
            Self::Precondition(_) => Code::FailedPrecondition,
        }
    }

    fn client_message(&self) -> String {
        match self {
            Self::Invalid { field, message } => format!("invalid {field}: {message}"),
            Self::Storage(e) => e.client_message(),
            Self::Reader(_) => "internal error".to_owned(),
            Self::Spool(_) => {
                "the upload could not be kept in temporary storage; retry the call".to_owned()
            }
            Self::Conflict(m) | Self::Precondition(m) => m.clone(),
        }
    }
}

impl From<sqlx::Error> for EraStoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Storage(StorageError::Database(e))
    }
}

/// What [`EraStore::store_file`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredFile {
    /// The file is new and now stored; its ERAs are to be added.
    New(EraFile),
    /// The same content was stored before: its ERAs, in set order; nothing was written.
    Duplicate(Vec<Era>),
}

/// Stores received files and their ERAs; every method is scoped to one tenant. Writes take the
/// caller's transaction.
#[async_trait]
pub trait EraStore: PaymentStore + DenialStore + DepositStore {
    /// Returns the database the store writes to (the RPC opens its transaction there).
    fn database(&self) -> &Database;

    /// Stores a received file in `tx`, once per content: content already stored (by `sha256`, under
    /// any key) answers the ERAs of that file and writes nothing.
    async fn store_file(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        content: &Upload,
        sha256: &str,
        file_name: &str,
    ) -> Result<StoredFile, EraStoreError>;

    /// Stores one ERA of `file` (stored in the same transaction) with its balance problems and
    /// provider adjustments, and returns it as stored.
    async fn add_era(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        file: &EraFile,
        era: &NewEra,
    ) -> Result<Era, EraStoreError>;

    /// Removes every ERA of a file in `tx` (when the file turns out unusable as a whole after some
    /// of its sets were stored); returns how many were removed.
    async fn discard_eras(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        file: EraFileId,
    ) -> Result<u64, EraStoreError>;

    /// Returns the ERA with this id, or `None` when the tenant has none.
    async fn get_era(&self, tenant: &TenantId, id: EraId) -> Result<Option<Era>, EraStoreError>;

    /// Returns the raw bytes of the file an ERA came from, or `None` when the tenant has no such ERA.
    async fn era_content(
        &self,
        tenant: &TenantId,
        id: EraId,
    ) -> Result<Option<Vec<u8>>, EraStoreError>;

    /// Returns up to `limit` ERAs matching `filter` with ids greater than `after`, in id order.
    async fn list_eras(
        &self,
        tenant: &TenantId,
        filter: &EraFilter,
        after: Option<EraId>,
        limit: u32,
    ) -> Result<Vec<Era>, EraStoreError>;

    /// Leases up to `limit` RECEIVED ERAs of any tenant to `owner` for `lease_micros` (those not
    /// leased, or whose lease ran out), so two posting workers never post the same ERA at once;
    /// returns (tenant, ERA id) pairs.
    async fn lease_postable(
        &self,
        owner: &str,
        lease_micros: i64,
        limit: u32,
    ) -> Result<Vec<(TenantId, EraId)>, EraStoreError>;

    /// Marks a RECEIVED ERA POSTED in `tx`, drops its lease and books its PLB provider
    /// adjustments (their `booked_at`); `Conflict` when it is no longer RECEIVED (another worker
    /// posted it).
    async fn mark_posted(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        id: EraId,
    ) -> Result<(), EraStoreError>;

    /// Records an operator's decision to post an UNBALANCED ERA in `tx`: the ERA becomes RECEIVED
    /// with the reason kept, and its HELD payments PENDING, for the posting worker.
    /// `Precondition` when the ERA is not UNBALANCED.
    async fn release_unbalanced(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        id: EraId,
        reason: &str,
    ) -> Result<(), EraStoreError>;

    /// Returns the operator's reason an ERA was released for posting; empty when none.
    async fn review_reason(&self, tenant: &TenantId, id: EraId) -> Result<String, EraStoreError>;

    /// Takes (or renews) the lease on retrieving 835s from payer route `route` for `owner`, for
    /// `lease_micros`; false while another owner's lease runs.
    async fn lease_route(
        &self,
        route: &str,
        owner: &str,
        lease_micros: i64,
    ) -> Result<bool, EraStoreError>;
}

/// Runs the remittance migrations on `db` and returns the store over it.
pub async fn open_store(db: Database) -> Result<Arc<dyn EraStore>, StorageError> {
    db.migrate(&PG_MIGRATOR, &SQLITE_MIGRATOR).await?;
    Ok(Arc::new(SqlEraStore::new(db)))
}

/// The [`EraStore`] over PostgreSQL or SQLite.
#[derive(Debug, Clone)]
pub struct SqlEraStore {
    db: Database,
}

impl SqlEraStore {
    /// Wraps a migrated database.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[derive(sqlx::FromRow)]
struct EraRow {
    id: String,
    file_id: String,
    set_position: i32,
    set_control_number: String,
    received_at: i64,
    updated_at: i64,
    content_sha256: String,
    byte_size: i64,
    status: String,
    rejection_reason: String,
    file_name: String,
    handling_code: Option<String>,
    payer_name: Option<String>,
    payer_id: Option<String>,
    payer_id_source: String,
    payee_name: Option<String>,
    payee_npi: Option<String>,
    payment_amount_cents: Option<i64>,
    credit_debit: Option<String>,
    payment_method: Option<String>,
    payment_date: Option<String>,
    trace_number: Option<String>,
    claim_count: i32,
    deposit_id: String,
    reconciliation_status: String,
}

#[derive(sqlx::FromRow)]
struct ProblemRow {
    era_id: String,
    level: String,
    claim_ref: String,
    line_control_number: String,
    line_number: Option<i32>,
    expected_cents: i64,
    actual_cents: i64,
    difference_cents: i64,
    message: String,
}

#[derive(sqlx::FromRow)]
struct PlbRow {
    era_id: String,
    provider_id: String,
    fiscal_period_date: String,
    reason: String,
    reference: String,
    amount_cents: i64,
    booked_at: Option<i64>,
}

/// An ERA's columns (its file's hash, size and name are copied into it: reads join nothing).
macro_rules! era_columns {
    () => {
        "id, file_id, set_position, set_control_number, received_at, updated_at, content_sha256, \
         byte_size, status, rejection_reason, file_name, handling_code, payer_name, payer_id, \
         payer_id_source, payee_name, payee_npi, payment_amount_cents, credit_debit, payment_method, \
         payment_date, trace_number, claim_count, deposit_id, reconciliation_status"
    };
}

macro_rules! problem_columns {
    () => {
        "era_id, level, claim_ref, line_control_number, line_number, expected_cents, actual_cents, \
         difference_cents, message"
    };
}

macro_rules! plb_columns {
    () => {
        "era_id, provider_id, fiscal_period_date, reason, reference, amount_cents, booked_at"
    };
}

/// The list filter, shared by the header query and the child queries so they select the same page.
/// `$1` tenant, `$2` status, `$3` payer_id, `$4` trace_number, `$5` received from, `$6` received to,
/// `$7` after id, `$8` limit, `$9` file id.
macro_rules! list_filter {
    () => {
        "SELECT id FROM eras WHERE tenant_id = $1 \
         AND ($2 IS NULL OR status = $2) \
         AND ($3 IS NULL OR payer_id = $3) \
         AND ($4 IS NULL OR trace_number = $4) \
         AND ($5 IS NULL OR received_at >= $5) \
         AND ($6 IS NULL OR received_at < $6) \
         AND ($7 IS NULL OR id > $7) \
         AND ($9 IS NULL OR file_id = $9) \
         AND ($10 IS NULL OR reconciliation_status = $10) \
         AND ($11 IS NULL OR (reconciliation_status = '' AND status <> 'REJECTED' \
             AND COALESCE(payment_method, '') <> 'NON' AND COALESCE(payment_amount_cents, 0) <> 0)) \
         ORDER BY id LIMIT $8"
    };
}

fn corrupt(what: &'static str, detail: impl Into<String>) -> EraStoreError {
    EraStoreError::from(StorageError::corrupt(what, detail.into()))
}

fn era_from_rows(
    row: EraRow,
    balance_problems: Vec<BalanceProblem>,
    provider_adjustments: Vec<ProviderAdjustment>,
) -> Result<Era, EraStoreError> {
    Ok(Era {
        id: EraId::parse(&row.id).map_err(|e| corrupt("ERA id", e.to_string()))?,
        file_id: EraFileId::parse(&row.file_id).map_err(|e| corrupt("ERA file id", e))?,
        set_position: u32::try_from(row.set_position)
            .map_err(|_| corrupt("ERA set position", row.set_position.to_string()))?,
        set_control_number: row.set_control_number,
        received_at: timestamp(row.received_at, "ERA received_at")?,
        updated_at: timestamp(row.updated_at, "ERA updated_at")?,
        content_sha256: row.content_sha256,
        byte_size: u64::try_from(row.byte_size)
            .map_err(|_| corrupt("ERA byte size", row.byte_size.to_string()))?,
        status: code::<EraStatus>(&row.status, "ERA status")?,
        rejection_reason: row.rejection_reason,
        file_name: row.file_name,
        summary: EraSummary {
            handling_code: row.handling_code,
            payer_name: row.payer_name,
            payer_id: row.payer_id,
            payer_id_source: (!row.payer_id_source.is_empty()).then_some(row.payer_id_source),
            payee_name: row.payee_name,
            payee_npi: row.payee_npi,
            payment_amount: row.payment_amount_cents.map(money),
            credit_debit: row.credit_debit,
            payment_method: row.payment_method,
            payment_date: row
                .payment_date
                .as_deref()
                .map(|d| date(d, "ERA payment date"))
                .transpose()?,
            trace_number: row.trace_number,
            claim_count: u32::try_from(row.claim_count)
                .map_err(|_| corrupt("ERA claim count", row.claim_count.to_string()))?,
        },
        balance_problems,
        provider_adjustments,
        deposit_id: row.deposit_id,
        reconciliation: (!row.reconciliation_status.is_empty())
            .then(|| code::<ReconciliationStatus>(&row.reconciliation_status, "ERA reconciliation"))
            .transpose()?,
    })
}

fn problem_from_row(row: ProblemRow) -> Result<BalanceProblem, EraStoreError> {
    Ok(BalanceProblem {
        level: code::<BalanceLevel>(&row.level, "balance problem level")?,
        claim_ref: row.claim_ref,
        line_control_number: row.line_control_number,
        line_number: row
            .line_number
            .map(|n| u32::try_from(n).map_err(|_| corrupt("balance problem line", n.to_string())))
            .transpose()?,
        expected: money(row.expected_cents),
        actual: money(row.actual_cents),
        difference: money(row.difference_cents),
        message: row.message,
    })
}

fn plb_from_row(row: PlbRow) -> Result<ProviderAdjustment, EraStoreError> {
    Ok(ProviderAdjustment {
        provider_id: row.provider_id,
        fiscal_period_date: if row.fiscal_period_date.is_empty() {
            None
        } else {
            Some(date(&row.fiscal_period_date, "PLB fiscal period date")?)
        },
        reason: row.reason,
        reference: row.reference,
        amount: money(row.amount_cents),
        booked_at: row
            .booked_at
            .map(|t| timestamp(t, "PLB booked_at"))
            .transpose()?,
    })
}

fn assemble(
    headers: Vec<EraRow>,
    problems: Vec<ProblemRow>,
    plbs: Vec<PlbRow>,
) -> Result<Vec<Era>, EraStoreError> {
    let mut by_era: HashMap<String, Vec<BalanceProblem>> = HashMap::new();
    for p in problems {
        let era_id = p.era_id.clone();
        by_era.entry(era_id).or_default().push(problem_from_row(p)?);
    }
    let mut plb_by_era: HashMap<String, Vec<ProviderAdjustment>> = HashMap::new();
    for p in plbs {
        let era_id = p.era_id.clone();
        plb_by_era.entry(era_id).or_default().push(plb_from_row(p)?);
    }
    headers
        .into_iter()
        .map(|h| {
            let p = by_era.remove(&h.id).unwrap_or_default();
            let a = plb_by_era.remove(&h.id).unwrap_or_default();
            era_from_rows(h, p, a)
        })
        .collect()
}

/// Reads one ERA's header, balance problems and provider adjustments through `$exec` (a pool);
/// returns `Ok(None)` from the caller when there is none.
macro_rules! load_era_rows {
    ($exec:expr, $tenant:expr, $id:expr) => {{
        let headers: Vec<EraRow> = sqlx::query_as(concat!(
            "SELECT ",
            era_columns!(),
            " FROM eras WHERE tenant_id = $1 AND id = $2"
        ))
        .bind($tenant)
        .bind($id)
        .fetch_all($exec)
        .await?;
        if headers.is_empty() {
            return Ok(None);
        }
        let problems: Vec<ProblemRow> = sqlx::query_as(concat!(
            "SELECT ",
            problem_columns!(),
            " FROM era_balance_problems WHERE tenant_id = $1 AND era_id = $2 ORDER BY position"
        ))
        .bind($tenant)
        .bind($id)
        .fetch_all($exec)
        .await?;
        let plbs: Vec<PlbRow> = sqlx::query_as(concat!(
            "SELECT ",
            plb_columns!(),
            " FROM era_provider_adjustments WHERE tenant_id = $1 AND era_id = $2 ORDER BY position"
        ))
        .bind($tenant)
        .bind($id)
        .fetch_all($exec)
        .await?;
        (headers, problems, plbs)
    }};
}

/// Reads the ERAs of one file (in set order) with their children through `&mut *conn`.
macro_rules! load_file_rows {
    ($conn:expr, $tenant:expr, $file:expr) => {{
        let headers: Vec<EraRow> = sqlx::query_as(concat!(
            "SELECT ",
            era_columns!(),
            " FROM eras WHERE tenant_id = $1 AND file_id = $2 ORDER BY set_position"
        ))
        .bind($tenant)
        .bind($file)
        .fetch_all(&mut *$conn)
        .await?;
        let problems: Vec<ProblemRow> = sqlx::query_as(concat!(
            "SELECT ",
            problem_columns!(),
            " FROM era_balance_problems WHERE tenant_id = $1 AND era_id IN \
             (SELECT id FROM eras WHERE tenant_id = $1 AND file_id = $2) ORDER BY era_id, position"
        ))
        .bind($tenant)
        .bind($file)
        .fetch_all(&mut *$conn)
        .await?;
        let plbs: Vec<PlbRow> = sqlx::query_as(concat!(
            "SELECT ",
            plb_columns!(),
            " FROM era_provider_adjustments WHERE tenant_id = $1 AND era_id IN \
             (SELECT id FROM eras WHERE tenant_id = $1 AND file_id = $2) ORDER BY era_id, position"
        ))
        .bind($tenant)
        .bind($file)
        .fetch_all(&mut *$conn)
        .await?;
        (headers, problems, plbs)
    }};
}

impl SqlEraStore {
    async fn load(&self, tenant: &str, id: &str) -> Result<Option<Era>, EraStoreError> {
        let (headers, problems, plbs) = with_db!(self.db, |pool| load_era_rows!(pool, tenant, id));
        Ok(assemble(headers, problems, plbs)?.into_iter().next())
    }
}

fn too_large(field: String, value: impl std::fmt::Display) -> EraStoreError {
    EraStoreError::Invalid {
        field,
        message: format!("{value} does not fit"),
    }
}

#[async_trait]
impl EraStore for SqlEraStore {
    fn database(&self) -> &Database {
        &self.db
    }

    async fn store_file(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        content: &Upload,
        sha256: &str,
        file_name: &str,
    ) -> Result<StoredFile, EraStoreError> {
        let byte_size =
            i64::try_from(content.len()).map_err(|_| too_large("content".into(), content.len()))?;
        let t = tenant.as_str();
        let id = EraFileId::new();
        let id_text = id.to_string();
        let now = time::now_micros();
        // ON CONFLICT makes "the same bytes received before, under another key" (also a concurrent
        // ingest of the same bytes on PostgreSQL, which waits for the first) resolve to the first file.
        let inserted = with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO era_files (tenant_id, id, received_at, content, content_sha256, \
                 byte_size, file_name) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (tenant_id, content_sha256) DO NOTHING",
            )
            .bind(t)
            .bind(&id_text)
            .bind(now)
            // The bytes go to era_file_chunks, a piece at a time.
            .bind(&[] as &[u8])
            .bind(sha256)
            .bind(byte_size)
            .bind(file_name)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        if inserted == 1 {
            let mut index = 0;
            while let Some(piece) = content
                .piece(index, FILE_CHUNK)
                .map_err(|e| EraStoreError::Spool(e.to_string()))?
            {
                let position =
                    i32::try_from(index).map_err(|_| too_large("content".into(), content.len()))?;
                index += 1;
                with_tx!(tx, |conn| {
                    sqlx::query(
                        "INSERT INTO era_file_chunks (tenant_id, file_id, position, bytes) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(t)
                    .bind(&id_text)
                    .bind(position)
                    .bind(piece.as_ref())
                    .execute(&mut *conn)
                    .await?;
                });
            }
            return Ok(StoredFile::New(EraFile {
                id,
                received_at: timestamp(now, "ERA file received_at")?,
                content_sha256: sha256.to_owned(),
                byte_size: content.len(),
                file_name: file_name.to_owned(),
            }));
        }
        let (headers, problems, plbs) = with_tx!(tx, |conn| {
            let existing: Option<String> = sqlx::query_scalar(
                "SELECT id FROM era_files WHERE tenant_id = $1 AND content_sha256 = $2",
            )
            .bind(t)
            .bind(sha256)
            .fetch_optional(&mut *conn)
            .await?;
            let Some(file) = existing else {
                return Err(corrupt(
                    "ERA file",
                    format!("content {sha256} conflicts but no file holds it"),
                ));
            };
            load_file_rows!(conn, t, &file)
        });
        Ok(StoredFile::Duplicate(assemble(headers, problems, plbs)?))
    }

    async fn add_era(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        file: &EraFile,
        era: &NewEra,
    ) -> Result<Era, EraStoreError> {
        let s = &era.summary;
        let payment_cents = s
            .payment_amount
            .map(|m| cents(m, "payment_amount"))
            .transpose()?;
        let mut problem_cents = Vec::with_capacity(era.balance_problems.len());
        for (i, p) in era.balance_problems.iter().enumerate() {
            let field = |f: &str| format!("balance_problems[{i}].{f}");
            let line_number = p
                .line_number
                .map(i32::try_from)
                .transpose()
                .map_err(|_| too_large(field("line_number"), p.line_number.unwrap_or(0)))?;
            problem_cents.push((
                cents(p.expected, &field("expected"))?,
                cents(p.actual, &field("actual"))?,
                cents(p.difference, &field("difference"))?,
                line_number,
            ));
        }
        let plb_cents = era
            .provider_adjustments
            .iter()
            .enumerate()
            .map(|(i, a)| cents(a.amount, &format!("provider_adjustments[{i}].amount")))
            .collect::<Result<Vec<_>, _>>()?;
        let claim_count = i32::try_from(s.claim_count)
            .map_err(|_| too_large("claim_count".into(), s.claim_count))?;
        let byte_size = i64::try_from(file.byte_size)
            .map_err(|_| too_large("content".into(), file.byte_size))?;
        let set_position = i32::try_from(era.set_position)
            .map_err(|_| too_large("set_position".into(), era.set_position))?;
        let t = tenant.as_str();
        let id = EraId::new();
        let id_text = id.to_string();
        let file_id = file.id.to_string();
        let received_at = time::to_micros(file.received_at);
        let now = time::now_micros();
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO eras (tenant_id, id, file_id, set_position, set_control_number, \
                 received_at, updated_at, status, rejection_reason, payer_name, payer_id, \
                 payer_id_source, payee_npi, payment_amount_cents, credit_debit, payment_method, \
                 payment_date, trace_number, claim_count, handling_code, payee_name, \
                 content_sha256, byte_size, file_name) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                 $17, $18, $19, $20, $21, $22, $23, $24)",
            )
            .bind(t)
            .bind(&id_text)
            .bind(&file_id)
            .bind(set_position)
            .bind(&era.set_control_number)
            .bind(received_at)
            .bind(now)
            .bind(era.status.as_str())
            .bind(&era.rejection_reason)
            .bind(s.payer_name.as_deref())
            .bind(s.payer_id.as_deref())
            .bind(s.payer_id_source.as_deref().unwrap_or_default())
            .bind(s.payee_npi.as_deref())
            .bind(payment_cents)
            .bind(s.credit_debit.as_deref())
            .bind(s.payment_method.as_deref())
            .bind(s.payment_date.map(format_iso_date))
            .bind(s.trace_number.as_deref())
            .bind(claim_count)
            .bind(s.handling_code.as_deref())
            .bind(s.payee_name.as_deref())
            .bind(&file.content_sha256)
            .bind(byte_size)
            .bind(&file.file_name)
            .execute(&mut *conn)
            .await?;
            for (i, (p, (expected, actual, difference, line_number))) in
                era.balance_problems.iter().zip(&problem_cents).enumerate()
            {
                sqlx::query(
                    "INSERT INTO era_balance_problems (tenant_id, era_id, position, level, claim_ref, \
                     line_number, expected_cents, actual_cents, difference_cents, line_control_number, message) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(t)
                .bind(&id_text)
                .bind(i32::try_from(i + 1).unwrap_or(i32::MAX))
                .bind(p.level.as_str())
                .bind(&p.claim_ref)
                .bind(*line_number)
                .bind(*expected)
                .bind(*actual)
                .bind(*difference)
                .bind(&p.line_control_number)
                .bind(&p.message)
                .execute(&mut *conn)
                .await?;
            }
            for (i, (a, amount_cents)) in
                era.provider_adjustments.iter().zip(&plb_cents).enumerate()
            {
                sqlx::query(
                    "INSERT INTO era_provider_adjustments (tenant_id, era_id, position, provider_id, \
                     fiscal_period_date, reason, reference, amount_cents) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(t)
                .bind(&id_text)
                .bind(i32::try_from(i + 1).unwrap_or(i32::MAX))
                .bind(&a.provider_id)
                .bind(a.fiscal_period_date.map(format_iso_date).unwrap_or_default())
                .bind(&a.reason)
                .bind(&a.reference)
                .bind(*amount_cents)
                .execute(&mut *conn)
                .await?;
            }
        });
        if !era.claim_payments.is_empty() {
            let status = if era.status == EraStatus::Unbalanced {
                PostingStatus::Held
            } else {
                PostingStatus::Pending
            };
            self.insert_claim_payments(
                tx,
                t,
                &id_text,
                s.payer_id.as_deref().unwrap_or_default(),
                s.payment_date,
                status,
                &era.claim_payments,
            )
            .await?;
        }
        Ok(Era {
            id,
            file_id: file.id,
            set_position: era.set_position,
            set_control_number: era.set_control_number.clone(),
            received_at: file.received_at,
            updated_at: timestamp(now, "ERA updated_at")?,
            content_sha256: file.content_sha256.clone(),
            byte_size: file.byte_size,
            status: era.status,
            rejection_reason: era.rejection_reason.clone(),
            file_name: file.file_name.clone(),
            summary: era.summary.clone(),
            balance_problems: era.balance_problems.clone(),
            provider_adjustments: era.provider_adjustments.clone(),
            deposit_id: String::new(),
            reconciliation: None,
        })
    }

    async fn discard_eras(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        file: EraFileId,
    ) -> Result<u64, EraStoreError> {
        let t = tenant.as_str();
        let file = file.to_string();
        // The children go with their ERA (ON DELETE CASCADE).
        Ok(with_tx!(tx, |conn| {
            sqlx::query("DELETE FROM eras WHERE tenant_id = $1 AND file_id = $2")
                .bind(t)
                .bind(&file)
                .execute(&mut *conn)
                .await?
                .rows_affected()
        }))
    }

    async fn get_era(&self, tenant: &TenantId, id: EraId) -> Result<Option<Era>, EraStoreError> {
        self.load(tenant.as_str(), &id.to_string()).await
    }

    async fn era_content(
        &self,
        tenant: &TenantId,
        id: EraId,
    ) -> Result<Option<Vec<u8>>, EraStoreError> {
        let t = tenant.as_str();
        let id_text = id.to_string();
        // Two look-ups by key rather than a join (see `era_columns!`).
        Ok(with_db!(self.db, |pool| {
            let file: Option<String> =
                sqlx::query_scalar("SELECT file_id FROM eras WHERE tenant_id = $1 AND id = $2")
                    .bind(t)
                    .bind(&id_text)
                    .fetch_optional(pool)
                    .await?;
            match file {
                None => None,
                Some(file) => {
                    let whole: Option<Vec<u8>> = sqlx::query_scalar(
                        "SELECT content FROM era_files WHERE tenant_id = $1 AND id = $2",
                    )
                    .bind(t)
                    .bind(&file)
                    .fetch_optional(pool)
                    .await?;
                    match whole {
                        // Stored in pieces (see `store_file`).
                        Some(whole) if whole.is_empty() => {
                            let pieces: Vec<Vec<u8>> = sqlx::query_scalar(
                                "SELECT bytes FROM era_file_chunks \
                                 WHERE tenant_id = $1 AND file_id = $2 ORDER BY position",
                            )
                            .bind(t)
                            .bind(&file)
                            .fetch_all(pool)
                            .await?;
                            Some(pieces.concat())
                        }
                        other => other,
                    }
                }
            }
        }))
    }

    async fn list_eras(
        &self,
        tenant: &TenantId,
        filter: &EraFilter,
        after: Option<EraId>,
        limit: u32,
    ) -> Result<Vec<Era>, EraStoreError> {
        let t = tenant.as_str();
        let status = filter.status.map(EraStatus::as_str);
        let from = filter.received_from.map(time::to_micros);
        let to = filter.received_to.map(time::to_micros);
        let after = after.map(|a| a.to_string());
        let file = filter.file_id.map(|f| f.to_string());
        // UNMATCHED_ERA is not stored: an ERA that moves money and that no deposit named.
        let (stored_reconciliation, unmatched_era) = match filter.reconciliation {
            Some(ReconciliationStatus::UnmatchedEra) => (None, Some("1")),
            other => (other.map(ReconciliationStatus::as_str), None),
        };
        let limit = i64::from(limit);
        // Binds the nine parameters of `list_filter!`, the same for each of the three queries.
        macro_rules! bind_filter {
            ($query:expr) => {
                $query
                    .bind(t)
                    .bind(status)
                    .bind(filter.payer_id.as_deref())
                    .bind(filter.trace_number.as_deref())
                    .bind(from)
                    .bind(to)
                    .bind(after.as_deref())
                    .bind(limit)
                    .bind(file.as_deref())
                    .bind(stored_reconciliation)
                    .bind(unmatched_era)
            };
        }
        let (headers, problems, plbs) = with_db!(self.db, |pool| {
            let headers: Vec<EraRow> = bind_filter!(
                sqlx::query_as(concat!(
                    "SELECT ",
                    era_columns!(),
                    " FROM eras WHERE tenant_id = $1 AND id IN (",
                    list_filter!(),
                    ") ORDER BY id"
                ))
                .persistent(false)
            )
            .fetch_all(pool)
            .await?;
            if headers.is_empty() {
                return Ok(Vec::new());
            }
            let problems: Vec<ProblemRow> = bind_filter!(
                sqlx::query_as(concat!(
                    "SELECT ",
                    problem_columns!(),
                    " FROM era_balance_problems WHERE tenant_id = $1 AND era_id IN (",
                    list_filter!(),
                    ") ORDER BY era_id, position"
                ))
                .persistent(false)
            )
            .fetch_all(pool)
            .await?;
            let plbs: Vec<PlbRow> = bind_filter!(
                sqlx::query_as(concat!(
                    "SELECT ",
                    plb_columns!(),
                    " FROM era_provider_adjustments WHERE tenant_id = $1 AND era_id IN (",
                    list_filter!(),
                    ") ORDER BY era_id, position"
                ))
                .persistent(false)
            )
            .fetch_all(pool)
            .await?;
            (headers, problems, plbs)
        });
        assemble(headers, problems, plbs)
    }

    async fn lease_postable(
        &self,
        owner: &str,
        lease_micros: i64,
        limit: u32,
    ) -> Result<Vec<(TenantId, EraId)>, EraStoreError> {
        let now = time::now_micros();
        let candidates: Vec<(String, String)> = with_db!(self.db, |pool| {
            sqlx::query_as(
                "SELECT tenant_id, id FROM eras WHERE status = 'RECEIVED' \
                 AND (posting_lease_until IS NULL OR posting_lease_until < $1) \
                 ORDER BY id LIMIT $2",
            )
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        let mut leased = Vec::with_capacity(candidates.len());
        for (tenant, id) in candidates {
            // Only one worker's conditional update wins each ERA.
            let won = with_db!(self.db, |pool| {
                sqlx::query(
                    "UPDATE eras SET posting_lease_until = $3, posting_lease_owner = $4 \
                     WHERE tenant_id = $1 AND id = $2 AND status = 'RECEIVED' \
                     AND (posting_lease_until IS NULL OR posting_lease_until < $5)",
                )
                .bind(&tenant)
                .bind(&id)
                .bind(now + lease_micros)
                .bind(owner)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
            });
            if won == 1 {
                let tenant = TenantId::parse(&tenant)
                    .map_err(|e| corrupt("ERA tenant", format!("{tenant:?}: {e}")))?;
                let id = EraId::parse(&id).map_err(|e| corrupt("ERA id", e.to_string()))?;
                leased.push((tenant, id));
            }
        }
        Ok(leased)
    }

    async fn mark_posted(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        id: EraId,
    ) -> Result<(), EraStoreError> {
        let changed = with_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE eras SET status = 'POSTED', updated_at = $3, posting_lease_until = NULL \
                 WHERE tenant_id = $1 AND id = $2 AND status = 'RECEIVED'",
            )
            .bind(tenant.as_str())
            .bind(id.to_string())
            .bind(time::now_micros())
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        if changed != 1 {
            return Err(EraStoreError::Conflict(format!(
                "ERA {id} is no longer RECEIVED"
            )));
        }
        // Its PLB adjustments are booked as provider-level entries with the posting.
        with_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE era_provider_adjustments SET booked_at = $3 \
                 WHERE tenant_id = $1 AND era_id = $2 AND booked_at IS NULL",
            )
            .bind(tenant.as_str())
            .bind(id.to_string())
            .bind(time::now_micros())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    async fn release_unbalanced(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        id: EraId,
        reason: &str,
    ) -> Result<(), EraStoreError> {
        let t = tenant.as_str();
        let id_text = id.to_string();
        let now = time::now_micros();
        let changed = with_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE eras SET status = 'RECEIVED', review_reason = $3, reviewed_at = $4, \
                 updated_at = $4 WHERE tenant_id = $1 AND id = $2 AND status = 'UNBALANCED'",
            )
            .bind(t)
            .bind(&id_text)
            .bind(reason)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        if changed != 1 {
            let current = self
                .load(t, &id_text)
                .await?
                .map(|e| e.status.as_str())
                .unwrap_or("unknown");
            return Err(EraStoreError::Precondition(format!(
                "ERA {id} is {current}; only an UNBALANCED ERA waits for an operator's decision"
            )));
        }
        self.move_payments(tx, t, &id_text, PostingStatus::Held, PostingStatus::Pending)
            .await?;
        Ok(())
    }

    async fn lease_route(
        &self,
        route: &str,
        owner: &str,
        lease_micros: i64,
    ) -> Result<bool, EraStoreError> {
        let now = time::now_micros();
        let won = with_db!(self.db, |pool| {
            sqlx::query(
                "INSERT INTO era_route_leases (route, owner, lease_until) VALUES ($1, $2, $3) \
                 ON CONFLICT (route) DO UPDATE SET owner = excluded.owner, \
                 lease_until = excluded.lease_until \
                 WHERE era_route_leases.owner = excluded.owner OR era_route_leases.lease_until < $4",
            )
            .bind(route)
            .bind(owner)
            .bind(now.saturating_add(lease_micros))
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(won == 1)
    }

    async fn review_reason(&self, tenant: &TenantId, id: EraId) -> Result<String, EraStoreError> {
        let t = tenant.as_str();
        let id = id.to_string();
        let reason: Option<String> = with_db!(self.db, |pool| {
            sqlx::query_scalar("SELECT review_reason FROM eras WHERE tenant_id = $1 AND id = $2")
                .bind(t)
                .bind(&id)
                .fetch_optional(pool)
                .await?
        });
        Ok(reason.unwrap_or_default())
    }
}
