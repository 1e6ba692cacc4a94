//! Persistence of the eligibility service: the [`EligibilityStore`] trait and its one
//! implementation over PostgreSQL and SQLite ([`SqlEligibilityStore`], written once with
//! portable SQL through `medbill_storage`'s `with_tx!`/`with_db!`). It reads and writes model
//! types; a check's parsed answer and an estimate are kept in their protobuf encoding through
//! [`crate::mapping`].
//!
//! Idempotency keys of every mutating RPC live in the platform table through
//! `medbill_storage::idempotency`; CheckEligibility records its key even when it answers with an
//! earlier check (the cache, or an identical call in flight), so a key always means one request.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use medbill_domain::{
    CoverageId, EligibilityCheckId, EstimateId, IdempotencyKey, Money, TenantId, format_iso_date,
    parse_iso_date,
};
use medbill_storage::idempotency::{self, Fingerprint, IdReservation};
use medbill_storage::{Database, StorageError, Tx, time, with_db, with_tx};
use sqlx::migrate::Migrator;

use crate::mapping::{self, DecodeError};
use crate::model::{
    CheckFilter, CheckStatus, CostEstimate, Coverage, CoverageFilter, CoverageOrder,
    CoverageStatus, EligibilityCheck, NewCoverage, StoredCheck,
};

/// The service's PostgreSQL migrations, embedded.
pub static PG_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");
/// The service's SQLite migrations, embedded.
pub static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// The namespace (PostgreSQL schema, SQLite file suffix) of the eligibility service's tables.
pub const NAMESPACE: &str = "eligibility";

/// The idempotency scope of coverage creation.
pub const CREATE_COVERAGE_SCOPE: &str = "eligibility.CreateCoverage";

/// The idempotency scope of eligibility checks (migration 0003 moved the keys recorded before
/// into it).
pub const CHECK_ELIGIBILITY_SCOPE: &str = "eligibility.CheckEligibility";

/// The idempotency scope of cost estimates.
pub const ESTIMATE_SCOPE: &str = "eligibility.EstimatePatientCost";

/// What one CheckEligibility call records under its idempotency key.
#[derive(Debug, Clone)]
pub enum CheckRecord {
    /// A new payer exchange: its audit row, written with the key.
    Exchange(Box<StoredCheck>),
    /// An answer reused from an earlier recorded check (the cache, or an identical call in
    /// flight): only the key is written, pointing at that check.
    Reused {
        /// The caller's tenant.
        tenant_id: TenantId,
        /// The caller's idempotency key.
        idempotency_key: IdempotencyKey,
        /// Fingerprint of the caller's request.
        request_fingerprint: Fingerprint,
        /// The check answered with.
        check_id: EligibilityCheckId,
    },
}

impl CheckRecord {
    fn tenant(&self) -> &TenantId {
        match self {
            CheckRecord::Exchange(s) => &s.tenant_id,
            CheckRecord::Reused { tenant_id, .. } => tenant_id,
        }
    }

    fn key(&self) -> &IdempotencyKey {
        match self {
            CheckRecord::Exchange(s) => &s.idempotency_key,
            CheckRecord::Reused {
                idempotency_key, ..
            } => idempotency_key,
        }
    }

    fn fingerprint(&self) -> &Fingerprint {
        match self {
            CheckRecord::Exchange(s) => &s.request_fingerprint,
            CheckRecord::Reused {
                request_fingerprint,
                ..
            } => request_fingerprint,
        }
    }

    fn check_id(&self) -> EligibilityCheckId {
        match self {
            CheckRecord::Exchange(s) => s.check.id,
            CheckRecord::Reused { check_id, .. } => *check_id,
        }
    }
}

/// A check found under an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedCheck {
    /// The check the key's call answered with (without raw X12).
    pub check: EligibilityCheck,
    /// True when that call reused an earlier check instead of asking the payer itself.
    pub reused: bool,
}

/// The outcome of recording one [`CheckRecord`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The key was free: the record is written.
    New,
    /// The key already holds this same request; answer with its check (nothing was written).
    Replay(Box<KeyedCheck>),
    /// The key already holds a different request (nothing was written).
    Conflict,
}

/// What an idempotency key holds for CheckEligibility, compared with a request's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLookup {
    /// Nothing: the request is new.
    Free,
    /// The same request was answered with this check.
    Replay(Box<KeyedCheck>),
    /// A different request holds the key.
    Conflict,
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The idempotency key was already used for a different request.
    #[error("idempotency key {key:?} was already used with a different request")]
    IdempotencyKeyReused {
        /// The reused key.
        key: String,
    },
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Storage(StorageError::Database(e))
    }
}

impl From<DecodeError> for StoreError {
    fn from(e: DecodeError) -> Self {
        StoreError::Storage(StorageError::corrupt(e.what, e.detail))
    }
}

impl StoreError {
    /// Returns true when retrying the whole operation may succeed (lock timeouts, busy database).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Storage(e) if e.is_retryable())
    }
}

/// Stores coverages, eligibility checks and cost estimates, every operation scoped to one tenant.
#[async_trait]
pub trait EligibilityStore: Send + Sync {
    /// Creates a coverage once per `(tenant, key)`: a retry with the same key and the same fields
    /// returns the coverage created first and writes nothing; the same key with different fields
    /// is [`StoreError::IdempotencyKeyReused`].
    async fn create_coverage(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        coverage: &NewCoverage,
    ) -> Result<Coverage, StoreError>;

    /// Returns the tenant's coverage `id`, or `None` when the tenant has no such coverage.
    async fn get_coverage(
        &self,
        tenant: &TenantId,
        id: &CoverageId,
    ) -> Result<Option<Coverage>, StoreError>;

    /// Returns up to `limit` of the tenant's coverages matching `filter` in id (creation) order,
    /// starting after the id `after` (keyset paging).
    async fn list_coverages(
        &self,
        tenant: &TenantId,
        filter: &CoverageFilter,
        after: Option<&CoverageId>,
        limit: u32,
    ) -> Result<Vec<Coverage>, StoreError>;

    /// Records CheckEligibility answers under their idempotency keys in one transaction (group
    /// commit), answering for each, in order: [`Recorded::New`] when the key was free (the
    /// audit row of an exchange is written with it), otherwise what the key already holds, and
    /// then nothing of that record is written. When the transaction fails nothing is written
    /// and the error is returned for the whole batch.
    async fn record_checks(&self, records: &[CheckRecord]) -> Result<Vec<Recorded>, StoreError>;

    /// Records one CheckEligibility answer (see [`EligibilityStore::record_checks`]).
    async fn record_check(&self, record: &CheckRecord) -> Result<Recorded, StoreError> {
        self.record_checks(std::slice::from_ref(record))
            .await?
            .pop()
            .ok_or_else(|| {
                StoreError::from(StorageError::corrupt(
                    "eligibility check record",
                    "recording returned no outcome",
                ))
            })
    }

    /// Returns what `(tenant, key)` holds for CheckEligibility, compared with `fingerprint`.
    async fn find_check_by_key(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
    ) -> Result<KeyLookup, StoreError>;

    /// Returns the tenant's check `id` (with the raw 270/271 when `include_raw`).
    async fn get_check(
        &self,
        tenant: &TenantId,
        id: &EligibilityCheckId,
        include_raw: bool,
    ) -> Result<Option<EligibilityCheck>, StoreError>;

    /// Returns up to `limit` of the tenant's checks matching `filter` in id order after `after`
    /// (without raw X12).
    async fn list_checks(
        &self,
        tenant: &TenantId,
        filter: &CheckFilter,
        after: Option<&EligibilityCheckId>,
        limit: u32,
    ) -> Result<Vec<EligibilityCheck>, StoreError>;

    /// Returns the newest completed check of a coverage for a date of service.
    async fn latest_completed_check(
        &self,
        tenant: &TenantId,
        coverage_id: &CoverageId,
        date_of_service: NaiveDate,
    ) -> Result<Option<EligibilityCheck>, StoreError>;

    /// Stores a cost estimate once per `(tenant, key)`: a retry with the same request (the same
    /// `request_fingerprint`) returns the estimate stored first; the same key with another
    /// request is [`StoreError::IdempotencyKeyReused`].
    async fn create_estimate(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        request_fingerprint: &Fingerprint,
        estimate: &CostEstimate,
    ) -> Result<CostEstimate, StoreError>;

    /// Returns the tenant's cost estimate `id`.
    async fn get_estimate(
        &self,
        tenant: &TenantId,
        id: &EstimateId,
    ) -> Result<Option<CostEstimate>, StoreError>;
}

/// Connects the store to a service database after running its migrations (platform tables first).
pub async fn open_store(db: Database) -> Result<Arc<dyn EligibilityStore>, StorageError> {
    db.migrate(&PG_MIGRATOR, &SQLITE_MIGRATOR).await?;
    Ok(Arc::new(SqlEligibilityStore::new(db)))
}

/// The [`EligibilityStore`] over a [`Database`] (PostgreSQL or SQLite), migrations already run.
#[derive(Debug, Clone)]
pub struct SqlEligibilityStore {
    db: Database,
}

/// A look-up by key or id the store makes, and the unique index whose columns its `WHERE`
/// names exactly, so the planner takes that index whatever the statistics say (tests check each
/// with `EXPLAIN` on a never-analysed database). Every parameter is text.
#[derive(Debug, Clone, Copy)]
pub struct KeyedLookup {
    /// What is looked up.
    pub name: &'static str,
    /// The statement as the store runs it.
    pub sql: &'static str,
    /// Its table.
    pub table: &'static str,
    /// The unique index it must use (PostgreSQL's name; on SQLite the table's primary key).
    pub index: &'static str,
    /// Number of parameters.
    pub params: usize,
}

const SELECT_COVERAGE: &str = "SELECT tenant_id, id, patient_ref, payer_id, payer_name, member_id, \
     group_number, plan_name, subscriber_first_name, subscriber_last_name, subscriber_birth_date, \
     relationship_to_subscriber, coverage_order, effective_date, termination_date, created_at, \
     updated_at FROM coverages WHERE tenant_id = $1 AND id = $2";

const SELECT_COVERAGE_PAGE: &str = "SELECT tenant_id, id, patient_ref, payer_id, payer_name, member_id, \
     group_number, plan_name, subscriber_first_name, subscriber_last_name, subscriber_birth_date, \
     relationship_to_subscriber, coverage_order, effective_date, termination_date, created_at, \
     updated_at FROM coverages \
     WHERE tenant_id = $1 AND ($2 IS NULL OR patient_ref = $2) AND ($3 IS NULL OR payer_id = $3) \
     AND ($4 IS NULL OR id > $4) ORDER BY id LIMIT $5";

const SELECT_CHECK: &str = "SELECT idempotency_key, detail, NULL AS raw_270, NULL AS raw_271 \
     FROM eligibility_checks WHERE tenant_id = $1 AND id = $2";

const SELECT_CHECK_RAW: &str = "SELECT idempotency_key, detail, raw_270, raw_271 \
     FROM eligibility_checks WHERE tenant_id = $1 AND id = $2";

/// The key look-up before a check; a read-only twin of the one `idempotency::claim` makes.
const SELECT_CHECK_KEY: &str = "SELECT request_sha256, response FROM platform_idempotency \
     WHERE tenant_id = $1 AND scope = $2 AND idem_key = $3";

const SELECT_ESTIMATE: &str = "SELECT detail FROM cost_estimates WHERE tenant_id = $1 AND id = $2";

/// The store's look-ups by key or id, with the index each must use.
pub const KEYED_LOOKUPS: &[KeyedLookup] = &[
    KeyedLookup {
        name: "coverage by id",
        sql: SELECT_COVERAGE,
        table: "coverages",
        index: "coverages_pkey",
        params: 2,
    },
    KeyedLookup {
        name: "eligibility check by id",
        sql: SELECT_CHECK,
        table: "eligibility_checks",
        index: "eligibility_checks_pkey",
        params: 2,
    },
    KeyedLookup {
        name: "eligibility check by id, raw X12 included",
        sql: SELECT_CHECK_RAW,
        table: "eligibility_checks",
        index: "eligibility_checks_pkey",
        params: 2,
    },
    KeyedLookup {
        name: "CheckEligibility idempotency key",
        sql: SELECT_CHECK_KEY,
        table: "platform_idempotency",
        index: "platform_idempotency_pkey",
        params: 3,
    },
    KeyedLookup {
        name: "cost estimate by id",
        sql: SELECT_ESTIMATE,
        table: "cost_estimates",
        index: "cost_estimates_pkey",
        params: 2,
    },
];

impl SqlEligibilityStore {
    /// Wraps a migrated database.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    async fn insert(&self, tx: &mut Tx, row: &CoverageRow) -> Result<(), StoreError> {
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO coverages (tenant_id, id, patient_ref, payer_id, payer_name, member_id, \
                 group_number, plan_name, subscriber_first_name, subscriber_last_name, \
                 subscriber_birth_date, relationship_to_subscriber, coverage_order, effective_date, \
                 termination_date, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
            )
            .bind(&row.tenant_id)
            .bind(&row.id)
            .bind(&row.patient_ref)
            .bind(&row.payer_id)
            .bind(&row.payer_name)
            .bind(&row.member_id)
            .bind(&row.group_number)
            .bind(&row.plan_name)
            .bind(&row.subscriber_first_name)
            .bind(&row.subscriber_last_name)
            .bind(&row.subscriber_birth_date)
            .bind(&row.relationship_to_subscriber)
            .bind(&row.coverage_order)
            .bind(&row.effective_date)
            .bind(&row.termination_date)
            .bind(row.created_at)
            .bind(row.updated_at)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    async fn get_in(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<Coverage>, StoreError> {
        let row: Option<CoverageRow> = with_tx!(tx, |conn| {
            sqlx::query_as(SELECT_COVERAGE)
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        });
        row.map(CoverageRow::into_model).transpose()
    }
}

impl SqlEligibilityStore {
    /// Records one answer in the caller's transaction: claims the key and, when it was free,
    /// writes the exchange's audit row and completes the key with the check id.
    async fn record_in(
        tx: &mut Tx,
        record: &CheckRecord,
        row: Option<&CheckRow>,
    ) -> Result<Step, StoreError> {
        let claim = idempotency::reserve_id(
            tx,
            record.tenant().as_str(),
            CHECK_ELIGIBILITY_SCOPE,
            record.key().as_str(),
            record.fingerprint(),
        )
        .await?;
        match claim {
            IdReservation::Conflict => Ok(Step::Conflict),
            IdReservation::Replay(id) => Ok(Step::Replay(id)),
            IdReservation::New(pending) => {
                if let Some(row) = row {
                    Self::insert_check_row(tx, row).await?;
                }
                let id = record.check_id().to_string();
                idempotency::complete(tx, pending, id.as_bytes()).await?;
                Ok(Step::New)
            }
        }
    }

    async fn insert_check_row(tx: &mut Tx, row: &CheckRow) -> Result<(), StoreError> {
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO eligibility_checks (tenant_id, id, idempotency_key, request_fingerprint, \
                 coverage_id, patient_ref, payer_id, member_id, provider_npi, date_of_service, \
                 service_type_codes, status, coverage_status, trace_number, plan_name, network_status, \
                 ind_deductible_total, ind_deductible_remaining, ind_oop_total, ind_oop_remaining, \
                 coinsurance_rate, aaa_codes, error_message, detail, raw_270, raw_271, payer_attempts, \
                 created_at, responded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
                 $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29)",
            )
            .bind(&row.tenant_id)
            .bind(&row.id)
            .bind(&row.idempotency_key)
            .bind(&row.request_fingerprint)
            .bind(&row.coverage_id)
            .bind(&row.patient_ref)
            .bind(&row.payer_id)
            .bind(&row.member_id)
            .bind(&row.provider_npi)
            .bind(&row.date_of_service)
            .bind(&row.service_type_codes)
            .bind(row.status)
            .bind(row.coverage_status)
            .bind(&row.trace_number)
            .bind(&row.plan_name)
            .bind(row.network_status)
            .bind(row.ind_deductible_total)
            .bind(row.ind_deductible_remaining)
            .bind(row.ind_oop_total)
            .bind(row.ind_oop_remaining)
            .bind(&row.coinsurance_rate)
            .bind(&row.aaa_codes)
            .bind(&row.error_message)
            .bind(&row.detail)
            .bind(&row.raw_270)
            .bind(&row.raw_271)
            .bind(row.payer_attempts)
            .bind(row.created_at)
            .bind(row.responded_at)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Reads the check a key's response names, and whether the key's call reused it.
    async fn keyed_check(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        id: &str,
    ) -> Result<KeyedCheck, StoreError> {
        let row: Option<CheckReadRow> = with_db!(self.db, |pool| {
            sqlx::query_as(SELECT_CHECK)
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        let row =
            row.ok_or_else(|| idempotency::replayed_entity_missing("eligibility check", id))?;
        let reused = row.idempotency_key != key.as_str();
        Ok(KeyedCheck {
            check: row.into_model()?,
            reused,
        })
    }

    async fn get_estimate_in(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<CostEstimate>, StoreError> {
        let detail: Option<(Vec<u8>,)> = with_tx!(tx, |conn| {
            sqlx::query_as(SELECT_ESTIMATE)
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        });
        Ok(detail
            .map(|(d,)| mapping::decode_estimate(&d))
            .transpose()?)
    }
}

/// What recording one answer did inside the transaction.
enum Step {
    New,
    Replay(String),
    Conflict,
}

fn corrupt(what: &'static str, detail: impl Into<String>) -> StoreError {
    StoreError::from(StorageError::corrupt(what, detail))
}

fn cents(what: &'static str, m: Option<Money>) -> Result<Option<i64>, StoreError> {
    m.map(|m| m.to_minor_units().map_err(|e| corrupt(what, e.to_string())))
        .transpose()
}

/// An `eligibility_checks` row as written.
struct CheckRow {
    tenant_id: String,
    id: String,
    idempotency_key: String,
    request_fingerprint: String,
    coverage_id: Option<String>,
    patient_ref: String,
    payer_id: String,
    member_id: String,
    provider_npi: String,
    date_of_service: String,
    service_type_codes: String,
    status: &'static str,
    coverage_status: &'static str,
    trace_number: String,
    plan_name: Option<String>,
    network_status: Option<&'static str>,
    ind_deductible_total: Option<i64>,
    ind_deductible_remaining: Option<i64>,
    ind_oop_total: Option<i64>,
    ind_oop_remaining: Option<i64>,
    coinsurance_rate: Option<String>,
    aaa_codes: String,
    error_message: Option<String>,
    detail: Vec<u8>,
    raw_270: Vec<u8>,
    raw_271: Option<Vec<u8>>,
    payer_attempts: i64,
    created_at: i64,
    responded_at: Option<i64>,
}

impl CheckRow {
    fn from_model(s: &StoredCheck) -> Result<Self, StoreError> {
        let c = &s.check;
        let summary = c.summary.as_ref();
        let ind_ded = summary.and_then(|s| s.individual_deductible.clone());
        let ind_oop = summary.and_then(|s| s.individual_out_of_pocket.clone());
        Ok(Self {
            tenant_id: s.tenant_id.as_str().to_owned(),
            id: c.id.to_string(),
            idempotency_key: s.idempotency_key.as_str().to_owned(),
            request_fingerprint: s.request_fingerprint.to_hex(),
            coverage_id: c.coverage_id.map(|id| id.to_string()),
            patient_ref: c.patient_ref.clone().unwrap_or_default(),
            payer_id: c.payer_id.clone(),
            member_id: c.member_id.clone(),
            provider_npi: c.provider_npi.clone(),
            date_of_service: format_iso_date(c.date_of_service),
            service_type_codes: c.service_type_codes.join(","),
            status: c.status.as_str(),
            coverage_status: summary
                .map_or(CoverageStatus::Unknown, |s| s.coverage_status)
                .as_str(),
            trace_number: c.trace_number.clone(),
            plan_name: summary.and_then(|s| s.plan_name.clone()),
            network_status: summary.and_then(|s| s.network_status).map(|n| n.as_str()),
            ind_deductible_total: cents(
                "deductible total",
                ind_ded.as_ref().and_then(|a| a.total),
            )?,
            ind_deductible_remaining: cents(
                "deductible remaining",
                ind_ded.as_ref().and_then(|a| a.remaining),
            )?,
            ind_oop_total: cents(
                "out-of-pocket total",
                ind_oop.as_ref().and_then(|a| a.total),
            )?,
            ind_oop_remaining: cents(
                "out-of-pocket remaining",
                ind_oop.as_ref().and_then(|a| a.remaining),
            )?,
            coinsurance_rate: summary
                .and_then(|s| s.coinsurance_rate)
                .map(|r| r.normalize().to_string()),
            aaa_codes: c
                .rejections
                .iter()
                .map(|r| r.reason_code.as_str())
                .collect::<Vec<_>>()
                .join(","),
            error_message: c.error_message.clone(),
            detail: mapping::encode_check_detail(c),
            raw_270: c.raw_request.clone(),
            raw_271: (!c.raw_response.is_empty()).then(|| c.raw_response.clone()),
            payer_attempts: i64::from(s.payer_attempts),
            created_at: time::to_micros(c.created_at),
            responded_at: c.responded_at.map(time::to_micros),
        })
    }
}

/// The columns of a check read back: the key it was made under, the encoded answer and, when
/// asked, the raw X12.
#[derive(sqlx::FromRow)]
struct CheckReadRow {
    idempotency_key: String,
    detail: Vec<u8>,
    raw_270: Option<Vec<u8>>,
    raw_271: Option<Vec<u8>>,
}

impl CheckReadRow {
    fn into_model(self) -> Result<EligibilityCheck, StoreError> {
        let mut check = mapping::decode_check_detail(&self.detail)?;
        check.raw_request = self.raw_270.unwrap_or_default();
        check.raw_response = self.raw_271.unwrap_or_default();
        Ok(check)
    }
}

#[async_trait]
impl EligibilityStore for SqlEligibilityStore {
    async fn create_coverage(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        coverage: &NewCoverage,
    ) -> Result<Coverage, StoreError> {
        let mut tx = self.db.begin().await?;
        let fingerprint = Fingerprint::of(&canonical_bytes(coverage));
        let claim = idempotency::reserve_id(
            &mut tx,
            tenant.as_str(),
            CREATE_COVERAGE_SCOPE,
            key.as_str(),
            &fingerprint,
        )
        .await?;
        match claim {
            IdReservation::Conflict => Err(StoreError::IdempotencyKeyReused {
                key: key.as_str().to_owned(),
            }),
            IdReservation::Replay(id) => {
                let found = self.get_in(&mut tx, tenant, &id).await?;
                tx.rollback().await?;
                found.ok_or_else(|| idempotency::replayed_entity_missing("coverage", &id).into())
            }
            IdReservation::New(pending) => {
                // Stored precision is microseconds; truncate now so the returned value equals
                // what a later read returns.
                let now = time::now_micros();
                let created = Coverage {
                    id: CoverageId::new(),
                    tenant_id: tenant.clone(),
                    fields: coverage.clone(),
                    created_at: from_micros(now)?,
                    updated_at: from_micros(now)?,
                };
                self.insert(&mut tx, &CoverageRow::from_model(&created))
                    .await?;
                idempotency::complete(&mut tx, pending, created.id.to_string().as_bytes()).await?;
                tx.commit().await?;
                Ok(created)
            }
        }
    }

    async fn get_coverage(
        &self,
        tenant: &TenantId,
        id: &CoverageId,
    ) -> Result<Option<Coverage>, StoreError> {
        let row: Option<CoverageRow> = with_db!(self.db, |pool| {
            sqlx::query_as(SELECT_COVERAGE)
                .bind(tenant.as_str())
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        row.map(CoverageRow::into_model).transpose()
    }

    async fn list_coverages(
        &self,
        tenant: &TenantId,
        filter: &CoverageFilter,
        after: Option<&CoverageId>,
        limit: u32,
    ) -> Result<Vec<Coverage>, StoreError> {
        let after = after.map(ToString::to_string);
        let rows: Vec<CoverageRow> = with_db!(self.db, |pool| {
            sqlx::query_as(SELECT_COVERAGE_PAGE)
                .bind(tenant.as_str())
                .bind(filter.patient_ref.as_deref())
                .bind(filter.payer_id.as_deref())
                .bind(after.as_deref())
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(CoverageRow::into_model).collect()
    }

    async fn record_checks(&self, records: &[CheckRecord]) -> Result<Vec<Recorded>, StoreError> {
        // Encode before taking the write lock.
        let rows = records
            .iter()
            .map(|r| match r {
                CheckRecord::Exchange(stored) => CheckRow::from_model(stored).map(Some),
                CheckRecord::Reused { .. } => Ok(None),
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Keys are claimed in one order, so two replicas' batches cannot deadlock on PostgreSQL.
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_by(|&a, &b| {
            let key = |i: usize| {
                records
                    .get(i)
                    .map(|r| (r.tenant().as_str(), r.key().as_str()))
            };
            key(a).cmp(&key(b))
        });
        let mut steps: Vec<Option<Step>> = records.iter().map(|_| None).collect();
        let mut tx = self.db.begin().await?;
        for i in order {
            let (Some(record), Some(row), Some(step)) =
                (records.get(i), rows.get(i), steps.get_mut(i))
            else {
                continue;
            };
            *step = Some(Self::record_in(&mut tx, record, row.as_ref()).await?);
        }
        tx.commit().await?;
        let mut out = Vec::with_capacity(records.len());
        for (record, step) in records.iter().zip(steps) {
            out.push(match step {
                Some(Step::New) => Recorded::New,
                Some(Step::Conflict) => Recorded::Conflict,
                Some(Step::Replay(id)) => Recorded::Replay(Box::new(
                    self.keyed_check(record.tenant(), record.key(), &id).await?,
                )),
                None => return Err(corrupt("eligibility check record", "a record was skipped")),
            });
        }
        Ok(out)
    }

    async fn find_check_by_key(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
    ) -> Result<KeyLookup, StoreError> {
        let row: Option<(String, Option<Vec<u8>>)> = with_db!(self.db, |pool| {
            sqlx::query_as(SELECT_CHECK_KEY)
                .bind(tenant.as_str())
                .bind(CHECK_ELIGIBILITY_SCOPE)
                .bind(key.as_str())
                .fetch_optional(pool)
                .await?
        });
        match row {
            None => Ok(KeyLookup::Free),
            Some((stored, _)) if stored != fingerprint.to_hex() => Ok(KeyLookup::Conflict),
            Some((_, Some(response))) => {
                let id = String::from_utf8(response)
                    .map_err(|_| corrupt("idempotency response", "recorded id is not UTF-8"))?;
                Ok(KeyLookup::Replay(Box::new(
                    self.keyed_check(tenant, key, &id).await?,
                )))
            }
            // A committed record always has its response; see `idempotency::claim`.
            Some((_, None)) => Err(StoreError::from(StorageError::IdempotencyIncomplete {
                scope: CHECK_ELIGIBILITY_SCOPE.to_owned(),
                key: key.as_str().to_owned(),
            })),
        }
    }

    async fn get_check(
        &self,
        tenant: &TenantId,
        id: &EligibilityCheckId,
        include_raw: bool,
    ) -> Result<Option<EligibilityCheck>, StoreError> {
        let sql = if include_raw {
            SELECT_CHECK_RAW
        } else {
            SELECT_CHECK
        };
        let row: Option<CheckReadRow> = with_db!(self.db, |pool| {
            sqlx::query_as(sql)
                .bind(tenant.as_str())
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        row.map(CheckReadRow::into_model).transpose()
    }

    async fn list_checks(
        &self,
        tenant: &TenantId,
        filter: &CheckFilter,
        after: Option<&EligibilityCheckId>,
        limit: u32,
    ) -> Result<Vec<EligibilityCheck>, StoreError> {
        let after = after.map(ToString::to_string);
        let coverage = filter.coverage_id.map(|c| c.to_string());
        let dos_from = filter.date_of_service_from.map(format_iso_date);
        let dos_to = filter.date_of_service_to.map(format_iso_date);
        let status = filter.status.map(CheckStatus::as_str);
        const SQL: &str = "SELECT idempotency_key, detail, NULL AS raw_270, NULL AS raw_271 FROM eligibility_checks \
             WHERE tenant_id = $1 AND ($2 IS NULL OR coverage_id = $2) \
             AND ($3 IS NULL OR patient_ref = $3) AND ($4 IS NULL OR payer_id = $4) \
             AND ($5 IS NULL OR status = $5) AND ($6 IS NULL OR date_of_service >= $6) \
             AND ($7 IS NULL OR date_of_service <= $7) AND ($8 IS NULL OR created_at >= $8) \
             AND ($9 IS NULL OR created_at < $9) AND ($10 IS NULL OR id > $10) ORDER BY id LIMIT $11";
        let rows: Vec<CheckReadRow> = with_db!(self.db, |pool| {
            sqlx::query_as(SQL)
                .bind(tenant.as_str())
                .bind(coverage.as_deref())
                .bind(filter.patient_ref.as_deref())
                .bind(filter.payer_id.as_deref())
                .bind(status)
                .bind(dos_from.as_deref())
                .bind(dos_to.as_deref())
                .bind(filter.created_from_micros)
                .bind(filter.created_before_micros)
                .bind(after.as_deref())
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(CheckReadRow::into_model).collect()
    }

    async fn latest_completed_check(
        &self,
        tenant: &TenantId,
        coverage_id: &CoverageId,
        date_of_service: NaiveDate,
    ) -> Result<Option<EligibilityCheck>, StoreError> {
        let row: Option<CheckReadRow> = with_db!(self.db, |pool| {
            sqlx::query_as(
                "SELECT idempotency_key, detail, NULL AS raw_270, NULL AS raw_271 \
                 FROM eligibility_checks WHERE tenant_id = $1 AND coverage_id = $2 \
                 AND date_of_service = $3 AND status = 'COMPLETED' ORDER BY id DESC LIMIT 1",
            )
            .bind(tenant.as_str())
            .bind(coverage_id.to_string())
            .bind(format_iso_date(date_of_service))
            .fetch_optional(pool)
            .await?
        });
        row.map(CheckReadRow::into_model).transpose()
    }

    async fn create_estimate(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        request_fingerprint: &Fingerprint,
        estimate: &CostEstimate,
    ) -> Result<CostEstimate, StoreError> {
        let amount = |what: &'static str, m: Money| {
            m.to_minor_units().map_err(|e| corrupt(what, e.to_string()))
        };
        let total_charge = amount("total charge", estimate.total_charge)?;
        let total_allowed = amount("total allowed", estimate.total_allowed)?;
        let total_patient = amount(
            "total patient responsibility",
            estimate.total.patient_responsibility,
        )?;
        let detail = mapping::encode_estimate(estimate);
        let mut tx = self.db.begin().await?;
        let claim = idempotency::reserve_id(
            &mut tx,
            tenant.as_str(),
            ESTIMATE_SCOPE,
            key.as_str(),
            request_fingerprint,
        )
        .await?;
        match claim {
            IdReservation::Conflict => Err(StoreError::IdempotencyKeyReused {
                key: key.as_str().to_owned(),
            }),
            IdReservation::Replay(id) => {
                let found = self.get_estimate_in(&mut tx, tenant, &id).await?;
                tx.rollback().await?;
                found.ok_or_else(|| idempotency::replayed_entity_missing("estimate", &id).into())
            }
            IdReservation::New(pending) => {
                with_tx!(tx, |conn| {
                    sqlx::query(
                        "INSERT INTO cost_estimates (tenant_id, id, eligibility_check_id, coverage_id, \
                         patient_ref, date_of_service, self_pay, total_charge, total_allowed, \
                         total_patient, detail, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    )
                    .bind(tenant.as_str())
                    .bind(estimate.id.to_string())
                    .bind(estimate.eligibility_check_id.map(|id| id.to_string()))
                    .bind(estimate.coverage_id.map(|id| id.to_string()))
                    .bind(&estimate.patient_ref)
                    .bind(format_iso_date(estimate.date_of_service))
                    .bind(estimate.self_pay)
                    .bind(total_charge)
                    .bind(total_allowed)
                    .bind(total_patient)
                    .bind(&detail)
                    .bind(time::to_micros(estimate.created_at))
                    .execute(&mut *conn)
                    .await?;
                });
                idempotency::complete(&mut tx, pending, estimate.id.to_string().as_bytes()).await?;
                tx.commit().await?;
                Ok(estimate.clone())
            }
        }
    }

    async fn get_estimate(
        &self,
        tenant: &TenantId,
        id: &EstimateId,
    ) -> Result<Option<CostEstimate>, StoreError> {
        let detail: Option<(Vec<u8>,)> = with_db!(self.db, |pool| {
            sqlx::query_as(SELECT_ESTIMATE)
                .bind(tenant.as_str())
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        Ok(detail
            .map(|(d,)| mapping::decode_estimate(&d))
            .transpose()?)
    }
}

/// Encodes the fields that identify "the same request" for idempotency: every caller-supplied
/// field, each length-prefixed so adjacent fields cannot run into each other.
fn canonical_bytes(c: &NewCoverage) -> Vec<u8> {
    let optional_date = |d: Option<NaiveDate>| d.map(format_iso_date);
    let fields: [Option<String>; 13] = [
        Some(c.patient_ref.clone()),
        Some(c.payer_id.clone()),
        Some(c.payer_name.clone()),
        Some(c.member_id.clone()),
        c.group_number.clone(),
        c.plan_name.clone(),
        Some(c.subscriber_first_name.clone()),
        Some(c.subscriber_last_name.clone()),
        Some(format_iso_date(c.subscriber_birth_date)),
        Some(c.relationship_to_subscriber.clone()),
        Some(c.coverage_order.as_str().to_owned()),
        Some(format_iso_date(c.effective_date)),
        optional_date(c.termination_date),
    ];
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

/// A `coverages` row as stored: text ids, codes and dates, integer timestamps.
#[derive(sqlx::FromRow)]
struct CoverageRow {
    tenant_id: String,
    id: String,
    patient_ref: String,
    payer_id: String,
    payer_name: String,
    member_id: String,
    group_number: Option<String>,
    plan_name: Option<String>,
    subscriber_first_name: String,
    subscriber_last_name: String,
    subscriber_birth_date: String,
    relationship_to_subscriber: String,
    coverage_order: String,
    effective_date: String,
    termination_date: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl CoverageRow {
    fn from_model(c: &Coverage) -> Self {
        let f = &c.fields;
        Self {
            tenant_id: c.tenant_id.as_str().to_owned(),
            id: c.id.to_string(),
            patient_ref: f.patient_ref.clone(),
            payer_id: f.payer_id.clone(),
            payer_name: f.payer_name.clone(),
            member_id: f.member_id.clone(),
            group_number: f.group_number.clone(),
            plan_name: f.plan_name.clone(),
            subscriber_first_name: f.subscriber_first_name.clone(),
            subscriber_last_name: f.subscriber_last_name.clone(),
            subscriber_birth_date: format_iso_date(f.subscriber_birth_date),
            relationship_to_subscriber: f.relationship_to_subscriber.clone(),
            coverage_order: f.coverage_order.as_str().to_owned(),
            effective_date: format_iso_date(f.effective_date),
            termination_date: f.termination_date.map(format_iso_date),
            created_at: time::to_micros(c.created_at),
            updated_at: time::to_micros(c.updated_at),
        }
    }

    fn into_model(self) -> Result<Coverage, StoreError> {
        let corrupt = |what: &'static str, detail: String| {
            StoreError::from(StorageError::corrupt(what, detail))
        };
        let date = |what: &'static str, text: &str| {
            parse_iso_date(text).map_err(|e| corrupt(what, e.to_string()))
        };
        Ok(Coverage {
            id: CoverageId::parse(&self.id).map_err(|e| corrupt("coverage id", e.to_string()))?,
            tenant_id: TenantId::parse(&self.tenant_id)
                .map_err(|e| corrupt("tenant id", e.to_string()))?,
            fields: NewCoverage {
                subscriber_birth_date: date("subscriber birth date", &self.subscriber_birth_date)?,
                coverage_order: self
                    .coverage_order
                    .parse::<CoverageOrder>()
                    .map_err(|e| corrupt("coverage order", e.to_string()))?,
                effective_date: date("effective date", &self.effective_date)?,
                termination_date: self
                    .termination_date
                    .as_deref()
                    .map(|d| date("termination date", d))
                    .transpose()?,
                patient_ref: self.patient_ref,
                payer_id: self.payer_id,
                payer_name: self.payer_name,
                member_id: self.member_id,
                group_number: self.group_number,
                plan_name: self.plan_name,
                subscriber_first_name: self.subscriber_first_name,
                subscriber_last_name: self.subscriber_last_name,
                relationship_to_subscriber: self.relationship_to_subscriber,
            },
            created_at: from_micros(self.created_at)?,
            updated_at: from_micros(self.updated_at)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> NewCoverage {
        NewCoverage {
            patient_ref: "p-1".into(),
            payer_id: "60054".into(),
            payer_name: "AETNA".into(),
            member_id: "W123".into(),
            group_number: None,
            plan_name: Some("GOLD".into()),
            subscriber_first_name: "ANN".into(),
            subscriber_last_name: "LEE".into(),
            subscriber_birth_date: NaiveDate::from_ymd_opt(1980, 1, 2).unwrap_or_default(),
            relationship_to_subscriber: "18".into(),
            coverage_order: CoverageOrder::Primary,
            effective_date: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default(),
            termination_date: None,
        }
    }

    #[test]
    fn canonical_bytes_tell_requests_apart() {
        let a = sample();
        assert_eq!(canonical_bytes(&a), canonical_bytes(&a.clone()));
        let mut b = a.clone();
        b.group_number = Some(String::new());
        assert_ne!(
            canonical_bytes(&a),
            canonical_bytes(&b),
            "absent and empty differ"
        );
        let mut c = a.clone();
        c.subscriber_first_name = "AN".into();
        c.subscriber_last_name = "NLEE".into();
        assert_ne!(
            canonical_bytes(&a),
            canonical_bytes(&c),
            "shifted text differs"
        );
    }
}
