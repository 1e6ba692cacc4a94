//! Persistence of the eligibility service: the [`EligibilityStore`] trait and its one
//! implementation over PostgreSQL and SQLite ([`SqlEligibilityStore`], written once with
//! portable SQL through `medbill_storage`'s `with_tx!`/`with_db!`). It reads and writes model
//! types; a check's parsed answer and an estimate are kept in their protobuf encoding through
//! [`crate::mapping`].
//!
//! Writes run in the caller's transaction: the RPC's, which also holds its idempotency key
//! (`medbill_runtime::idempotent`). The store knows nothing of keys.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use medbill_domain::{CoverageId, EligibilityCheckId, EstimateId, TenantId, format_iso_date};
use medbill_runtime::ErrorCode;
use medbill_storage::rows::{cents, code, date, timestamp};
use medbill_storage::{Database, StorageError, Tx, time, with_db, with_tx};
use sqlx::migrate::Migrator;
use tonic::Code;

use crate::mapping::{self, DecodeError};
use crate::model::{
    CheckFilter, CheckStatus, CostEstimate, Coverage, CoverageFilter, CoverageStatus,
    EligibilityCheck, NewCoverage, StoredCheck,
};

/// The service's PostgreSQL migrations, embedded.
pub static PG_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");
/// The service's SQLite migrations, embedded.
pub static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// The namespace (PostgreSQL schema, SQLite file suffix) of the eligibility service's tables.
pub const NAMESPACE: &str = "eligibility";

/// Why a store operation failed; declares its gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed, a row did not read back, or a value could not be stored.
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

impl ErrorCode for StoreError {
    fn error_code(&self) -> Code {
        match self {
            Self::Storage(e) => e.error_code(),
        }
    }

    fn client_message(&self) -> String {
        match self {
            Self::Storage(e) => e.client_message(),
        }
    }
}

/// Stores coverages, eligibility checks and cost estimates, every operation scoped to one tenant.
/// Writes take the caller's transaction.
#[async_trait]
pub trait EligibilityStore: Send + Sync {
    /// Returns the database the store writes to (the RPC opens its transaction there).
    fn database(&self) -> &Database;

    /// Creates a coverage in `tx` and returns it as it will be stored.
    async fn create_coverage(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
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

    /// Writes the audit row of one payer exchange (raw X12 included) in `tx`.
    async fn insert_check(&self, tx: &mut Tx, check: &StoredCheck) -> Result<(), StoreError>;

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

    /// Stores a cost estimate in `tx`.
    async fn insert_estimate(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        estimate: &CostEstimate,
    ) -> Result<(), StoreError>;

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

/// The start of a page of coverages; [`coverage_page_sql`] adds the filters given.
const SELECT_COVERAGES: &str = "SELECT tenant_id, id, patient_ref, payer_id, payer_name, member_id, \
     group_number, plan_name, subscriber_first_name, subscriber_last_name, subscriber_birth_date, \
     relationship_to_subscriber, coverage_order, effective_date, termination_date, created_at, \
     updated_at FROM coverages WHERE tenant_id = $1";

/// A patient's coverages, first page: what claims asks for each adjudication that may need a
/// secondary claim, so it must stay on the patient index (see the keyed look-up test).
pub const SELECT_PATIENT_COVERAGES: &str = "SELECT tenant_id, id, patient_ref, payer_id, payer_name, member_id, \
     group_number, plan_name, subscriber_first_name, subscriber_last_name, subscriber_birth_date, \
     relationship_to_subscriber, coverage_order, effective_date, termination_date, created_at, \
     updated_at FROM coverages WHERE tenant_id = $1 AND patient_ref = $2 ORDER BY id LIMIT $3";

/// A page of coverages naming only the filters given (see `medbill_storage::filters`): the
/// `($n IS NULL OR ..)` form made each look-up of a patient's coverages read the tenant's every
/// coverage.
fn coverage_page_sql(patient: bool, payer: bool, after: bool) -> String {
    medbill_storage::filters::page_sql(
        SELECT_COVERAGES,
        2,
        &[
            (patient, "patient_ref ="),
            (payer, "payer_id ="),
            (after, "id >"),
        ],
        "id",
    )
}

const SELECT_CHECK: &str = "SELECT detail, NULL AS raw_270, NULL AS raw_271 \
     FROM eligibility_checks WHERE tenant_id = $1 AND id = $2";

const SELECT_CHECK_RAW: &str = "SELECT detail, raw_270, raw_271 \
     FROM eligibility_checks WHERE tenant_id = $1 AND id = $2";

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

    async fn insert_check_row(tx: &mut Tx, row: &CheckRow) -> Result<(), StoreError> {
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO eligibility_checks (tenant_id, id, idempotency_key, coverage_id, \
                 patient_ref, payer_id, member_id, provider_npi, date_of_service, \
                 service_type_codes, status, coverage_status, trace_number, plan_name, network_status, \
                 ind_deductible_total, ind_deductible_remaining, ind_oop_total, ind_oop_remaining, \
                 coinsurance_rate, aaa_codes, error_message, detail, raw_270, raw_271, payer_attempts, \
                 created_at, responded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
                 $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)",
            )
            .bind(&row.tenant_id)
            .bind(&row.id)
            .bind(&row.idempotency_key)
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
}

/// Returns an optional amount as BIGINT cents (see [`cents`]).
fn optional_cents(
    amount: Option<medbill_domain::Money>,
    field: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(amount.map(|m| cents(m, field)).transpose()?)
}

/// An `eligibility_checks` row as written.
struct CheckRow {
    tenant_id: String,
    id: String,
    idempotency_key: String,
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
            ind_deductible_total: optional_cents(
                ind_ded.as_ref().and_then(|a| a.total),
                "summary.individual_deductible.total",
            )?,
            ind_deductible_remaining: optional_cents(
                ind_ded.as_ref().and_then(|a| a.remaining),
                "summary.individual_deductible.remaining",
            )?,
            ind_oop_total: optional_cents(
                ind_oop.as_ref().and_then(|a| a.total),
                "summary.individual_out_of_pocket.total",
            )?,
            ind_oop_remaining: optional_cents(
                ind_oop.as_ref().and_then(|a| a.remaining),
                "summary.individual_out_of_pocket.remaining",
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

/// The columns of a check read back: the encoded answer and, when asked, the raw X12.
#[derive(sqlx::FromRow)]
struct CheckReadRow {
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
    fn database(&self) -> &Database {
        &self.db
    }

    async fn create_coverage(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        coverage: &NewCoverage,
    ) -> Result<Coverage, StoreError> {
        // Stored precision is microseconds; truncate now so the returned value equals what a
        // later read returns.
        let now = timestamp(time::now_micros(), "coverage created_at")?;
        let created = Coverage {
            id: CoverageId::new(),
            tenant_id: tenant.clone(),
            fields: coverage.clone(),
            created_at: now,
            updated_at: now,
        };
        self.insert(tx, &CoverageRow::from_model(&created)).await?;
        Ok(created)
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
        let sql = coverage_page_sql(
            filter.patient_ref.is_some(),
            filter.payer_id.is_some(),
            after.is_some(),
        );
        let rows: Vec<CoverageRow> = with_db!(self.db, |pool| {
            // Only numbered placeholders are formatted into the text; the values are bound.
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(tenant.as_str());
            for value in [
                filter.patient_ref.as_deref(),
                filter.payer_id.as_deref(),
                after.as_deref(),
            ]
            .into_iter()
            .flatten()
            {
                query = query.bind(value);
            }
            query.bind(i64::from(limit)).fetch_all(pool).await?
        });
        rows.into_iter().map(CoverageRow::into_model).collect()
    }

    async fn insert_check(&self, tx: &mut Tx, check: &StoredCheck) -> Result<(), StoreError> {
        Self::insert_check_row(tx, &CheckRow::from_model(check)?).await
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
        const SQL: &str = "SELECT detail, NULL AS raw_270, NULL AS raw_271 FROM eligibility_checks \
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
                "SELECT detail, NULL AS raw_270, NULL AS raw_271 \
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

    async fn insert_estimate(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        estimate: &CostEstimate,
    ) -> Result<(), StoreError> {
        let total_charge = cents(estimate.total_charge, "total_charge")?;
        let total_allowed = cents(estimate.total_allowed, "total_allowed")?;
        let total_patient = cents(
            estimate.total.patient_responsibility,
            "total.patient_responsibility",
        )?;
        let detail = mapping::encode_estimate(estimate);
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
        Ok(())
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
        Ok(Coverage {
            id: code(&self.id, "coverages.id")?,
            tenant_id: code(&self.tenant_id, "coverages.tenant_id")?,
            fields: NewCoverage {
                subscriber_birth_date: date(
                    &self.subscriber_birth_date,
                    "coverages.subscriber_birth_date",
                )?,
                coverage_order: code(&self.coverage_order, "coverages.coverage_order")?,
                effective_date: date(&self.effective_date, "coverages.effective_date")?,
                termination_date: self
                    .termination_date
                    .as_deref()
                    .map(|d| date(d, "coverages.termination_date"))
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
            created_at: timestamp(self.created_at, "coverages.created_at")?,
            updated_at: timestamp(self.updated_at, "coverages.updated_at")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{SELECT_PATIENT_COVERAGES, coverage_page_sql};

    #[test]
    fn a_coverage_page_names_only_the_filters_given() {
        // The patient's look-up is the statement whose plan the keyed look-up test checks.
        assert_eq!(
            coverage_page_sql(true, false, false),
            SELECT_PATIENT_COVERAGES
        );
        let all = coverage_page_sql(true, true, true);
        assert!(
            all.ends_with(
                "WHERE tenant_id = $1 AND patient_ref = $2 AND payer_id = $3 AND id > $4 \
                 ORDER BY id LIMIT $5"
            ),
            "{all}"
        );
        let none = coverage_page_sql(false, false, false);
        assert!(
            none.ends_with("WHERE tenant_id = $1 ORDER BY id LIMIT $2"),
            "{none}"
        );
        assert!(!none.contains("IS NULL"));
    }
}
