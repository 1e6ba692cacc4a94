//! Persistence of coverages: the [`EligibilityStore`] trait and its one implementation over
//! PostgreSQL and SQLite ([`SqlEligibilityStore`], written once with portable SQL through
//! `medbill_storage`'s `with_tx!`/`with_db!`).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use medbill_domain::{
    CoverageId, EligibilityCheckId, EstimateId, IdempotencyKey, TenantId, format_iso_date,
    parse_iso_date,
};
use medbill_proto::eligibility::v1 as pb;
use medbill_storage::idempotency::{self, Fingerprint, IdReservation};
use medbill_storage::{Database, StorageError, Tx, time, with_db, with_tx};
use prost::Message;
use sqlx::migrate::Migrator;

use crate::model::{
    CheckFilter, Coverage, CoverageFilter, CoverageOrder, NewCoverage, StoredCheck,
};

/// The service's PostgreSQL migrations, embedded.
pub static PG_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");
/// The service's SQLite migrations, embedded.
pub static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// The namespace (PostgreSQL schema, SQLite file suffix) of the eligibility service's tables.
pub const NAMESPACE: &str = "eligibility";

/// The idempotency scope of coverage creation.
pub const CREATE_COVERAGE_SCOPE: &str = "eligibility.CreateCoverage";

/// The idempotency scope of cost estimates.
pub const ESTIMATE_SCOPE: &str = "eligibility.EstimatePatientCost";

/// Rows per INSERT statement in a group commit. One: on PostgreSQL, statements carrying several
/// checks with their raw X12 (tens of KB) stalled 40-100 ms each in the socket (sqlx does not
/// set TCP_NODELAY, so Nagle meets delayed ACKs), while single-row statements in one
/// transaction cost one quick round trip each; the statement text also stays identical, so it
/// is prepared once per connection.
const ROWS_PER_STATEMENT: usize = 1;

/// The outcome of [`EligibilityStore::insert_check`].
#[derive(Debug)]
pub enum Inserted {
    /// The check was written.
    New,
    /// A check with the same idempotency key already existed: this one, with its fingerprint.
    Existing(String, Box<pb::EligibilityCheck>),
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

impl StoreError {
    /// Returns true when retrying the whole operation may succeed (lock timeouts, busy database).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Storage(e) if e.is_retryable())
    }
}

/// Stores coverages, every operation scoped to one tenant.
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

    /// Records a finished eligibility check (its audit row). When the tenant already has a check
    /// under the same idempotency key (a concurrent retry won the race), nothing is written and
    /// that check is returned as [`Inserted::Existing`].
    async fn insert_check(&self, check: &StoredCheck) -> Result<Inserted, StoreError>;

    /// Records several finished checks in one transaction (group commit), answering like
    /// [`EligibilityStore::insert_check`] for each, in order. When the transaction fails nothing
    /// is written and the error is returned for the whole batch.
    async fn insert_checks(&self, checks: &[StoredCheck]) -> Result<Vec<Inserted>, StoreError> {
        let mut out = Vec::with_capacity(checks.len());
        for check in checks {
            out.push(self.insert_check(check).await?);
        }
        Ok(out)
    }

    /// Returns the check recorded under `(tenant, idempotency_key)` with its request fingerprint.
    async fn find_check_by_key(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
    ) -> Result<Option<(String, pb::EligibilityCheck)>, StoreError>;

    /// Returns the tenant's check `id` (with the raw 270/271 when `include_raw`).
    async fn get_check(
        &self,
        tenant: &TenantId,
        id: &EligibilityCheckId,
        include_raw: bool,
    ) -> Result<Option<pb::EligibilityCheck>, StoreError>;

    /// Returns up to `limit` of the tenant's checks matching `filter` in id order after `after`
    /// (without raw X12).
    async fn list_checks(
        &self,
        tenant: &TenantId,
        filter: &CheckFilter,
        after: Option<&EligibilityCheckId>,
        limit: u32,
    ) -> Result<Vec<pb::EligibilityCheck>, StoreError>;

    /// Returns the newest COMPLETED check of a coverage for a date of service.
    async fn latest_completed_check(
        &self,
        tenant: &TenantId,
        coverage_id: &CoverageId,
        date_of_service: NaiveDate,
    ) -> Result<Option<pb::EligibilityCheck>, StoreError>;

    /// Stores a cost estimate once per `(tenant, key)`: a retry with the same request returns
    /// the estimate stored first; the same key with another request is
    /// [`StoreError::IdempotencyKeyReused`].
    async fn create_estimate(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        request_fingerprint: &[u8],
        estimate: &pb::CostEstimate,
    ) -> Result<pb::CostEstimate, StoreError>;

    /// Returns the tenant's cost estimate `id`.
    async fn get_estimate(
        &self,
        tenant: &TenantId,
        id: &EstimateId,
    ) -> Result<Option<pb::CostEstimate>, StoreError>;
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
            sqlx::query_as(SELECT_ONE)
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        });
        row.map(CoverageRow::into_model).transpose()
    }
}

impl SqlEligibilityStore {
    /// Inserts check rows in one statement, skipping rows whose idempotency key is taken;
    /// returns the ids written.
    async fn insert_rows(tx: &mut Tx, rows: &[CheckRow]) -> Result<Vec<String>, StoreError> {
        let ids: Vec<(String,)> = with_tx!(tx, |conn| {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO eligibility_checks (tenant_id, id, idempotency_key, request_fingerprint, \
                 coverage_id, patient_ref, payer_id, member_id, provider_npi, date_of_service, \
                 service_type_codes, status, coverage_status, trace_number, plan_name, network_status, \
                 ind_deductible_total, ind_deductible_remaining, ind_oop_total, ind_oop_remaining, \
                 coinsurance_rate, aaa_codes, error_message, detail, raw_270, raw_271, payer_attempts, \
                 created_at, responded_at) ",
            );
            qb.push_values(rows, |mut b, row| {
                b.push_bind(&row.tenant_id)
                    .push_bind(&row.id)
                    .push_bind(&row.idempotency_key)
                    .push_bind(&row.request_fingerprint)
                    .push_bind(&row.coverage_id)
                    .push_bind(&row.patient_ref)
                    .push_bind(&row.payer_id)
                    .push_bind(&row.member_id)
                    .push_bind(&row.provider_npi)
                    .push_bind(&row.date_of_service)
                    .push_bind(&row.service_type_codes)
                    .push_bind(&row.status)
                    .push_bind(&row.coverage_status)
                    .push_bind(&row.trace_number)
                    .push_bind(&row.plan_name)
                    .push_bind(&row.network_status)
                    .push_bind(row.ind_deductible_total)
                    .push_bind(row.ind_deductible_remaining)
                    .push_bind(row.ind_oop_total)
                    .push_bind(row.ind_oop_remaining)
                    .push_bind(&row.coinsurance_rate)
                    .push_bind(&row.aaa_codes)
                    .push_bind(&row.error_message)
                    .push_bind(&row.detail)
                    .push_bind(&row.raw_270)
                    .push_bind(&row.raw_271)
                    .push_bind(row.payer_attempts)
                    .push_bind(row.created_at)
                    .push_bind(row.responded_at);
            });
            qb.push(" ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING id");
            qb.build_query_as::<(String,)>()
                .fetch_all(&mut *conn)
                .await?
        });
        Ok(ids.into_iter().map(|(id,)| id).collect())
    }

    async fn get_estimate_in(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Option<pb::CostEstimate>, StoreError> {
        let detail: Option<(Vec<u8>,)> = with_tx!(tx, |conn| {
            sqlx::query_as(SELECT_ESTIMATE)
                .bind(tenant.as_str())
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        });
        detail.map(|(d,)| decode_estimate(&d)).transpose()
    }
}

const SELECT_ESTIMATE: &str = "SELECT detail FROM cost_estimates WHERE tenant_id = $1 AND id = $2";

fn decode_estimate(bytes: &[u8]) -> Result<pb::CostEstimate, StoreError> {
    pb::CostEstimate::decode(bytes)
        .map_err(|e| StoreError::from(StorageError::corrupt("cost estimate detail", e.to_string())))
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
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
    status: String,
    coverage_status: String,
    trace_number: String,
    plan_name: Option<String>,
    network_status: Option<String>,
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
        let corrupt = |what: &'static str, detail: String| {
            StoreError::from(StorageError::corrupt(what, detail))
        };
        let cents = |what: &'static str, v: &str| -> Result<Option<i64>, StoreError> {
            if v.is_empty() {
                return Ok(None);
            }
            medbill_domain::Money::parse(v)
                .and_then(|m| m.to_minor_units())
                .map(Some)
                .map_err(|e| corrupt(what, e.to_string()))
        };
        let summary = c.summary.clone().unwrap_or_default();
        let ind_ded = summary.individual_deductible.clone().unwrap_or_default();
        let ind_oop = summary.individual_out_of_pocket.clone().unwrap_or_default();
        let micros = |t: &Option<prost_types::Timestamp>| {
            t.as_ref()
                .map(|t| t.seconds * 1_000_000 + i64::from(t.nanos / 1_000))
        };
        let mut detail = c.clone();
        detail.raw_request.clear();
        detail.raw_response.clear();
        Ok(Self {
            tenant_id: s.tenant_id.as_str().to_owned(),
            id: c.id.clone(),
            idempotency_key: s.idempotency_key.clone(),
            request_fingerprint: s.request_fingerprint.clone(),
            coverage_id: non_empty(&c.coverage_id).map(str::to_owned),
            patient_ref: c.patient_ref.clone(),
            payer_id: c.payer_id.clone(),
            member_id: c.member_id.clone(),
            provider_npi: c.provider_npi.clone(),
            date_of_service: c.date_of_service.clone(),
            service_type_codes: c.service_type_codes.join(","),
            status: check_status_name(c.status).to_owned(),
            coverage_status: coverage_status_name(summary.coverage_status).to_owned(),
            trace_number: c.trace_number.clone(),
            plan_name: non_empty(&summary.plan_name).map(str::to_owned),
            network_status: match pb::NetworkStatus::try_from(summary.network_status) {
                Ok(pb::NetworkStatus::InNetwork) => Some("IN_NETWORK".to_owned()),
                Ok(pb::NetworkStatus::OutOfNetwork) => Some("OUT_OF_NETWORK".to_owned()),
                Ok(pb::NetworkStatus::NotApplicable) => Some("NOT_APPLICABLE".to_owned()),
                _ => None,
            },
            ind_deductible_total: cents("deductible total", &ind_ded.total)?,
            ind_deductible_remaining: cents("deductible remaining", &ind_ded.remaining)?,
            ind_oop_total: cents("out-of-pocket total", &ind_oop.total)?,
            ind_oop_remaining: cents("out-of-pocket remaining", &ind_oop.remaining)?,
            coinsurance_rate: non_empty(&summary.coinsurance_rate).map(str::to_owned),
            aaa_codes: c
                .rejections
                .iter()
                .map(|r| r.reason_code.as_str())
                .collect::<Vec<_>>()
                .join(","),
            error_message: non_empty(&c.error_message).map(str::to_owned),
            detail: detail.encode_to_vec(),
            raw_270: c.raw_request.clone(),
            raw_271: (!c.raw_response.is_empty()).then(|| c.raw_response.clone()),
            payer_attempts: i64::from(s.payer_attempts),
            created_at: micros(&c.created_at).unwrap_or_else(time::now_micros),
            responded_at: micros(&c.responded_at),
        })
    }
}

/// Returns the stored name of a check status.
fn check_status_name(status: i32) -> &'static str {
    match pb::EligibilityCheckStatus::try_from(status) {
        Ok(pb::EligibilityCheckStatus::Completed) => "COMPLETED",
        Ok(pb::EligibilityCheckStatus::Rejected) => "REJECTED",
        Ok(pb::EligibilityCheckStatus::Failed) => "FAILED",
        _ => "PENDING",
    }
}

/// Returns the stored name of a coverage status.
fn coverage_status_name(status: i32) -> &'static str {
    match pb::CoverageStatus::try_from(status) {
        Ok(pb::CoverageStatus::Active) => "ACTIVE",
        Ok(pb::CoverageStatus::Inactive) => "INACTIVE",
        _ => "UNKNOWN",
    }
}

/// The columns of a check read back: the encoded answer and, when asked, the raw X12.
#[derive(sqlx::FromRow)]
struct CheckReadRow {
    request_fingerprint: String,
    detail: Vec<u8>,
    raw_270: Option<Vec<u8>>,
    raw_271: Option<Vec<u8>>,
}

impl CheckReadRow {
    fn into_proto(self) -> Result<pb::EligibilityCheck, StoreError> {
        let mut check = pb::EligibilityCheck::decode(self.detail.as_slice()).map_err(|e| {
            StoreError::from(StorageError::corrupt(
                "eligibility check detail",
                e.to_string(),
            ))
        })?;
        check.raw_request = self.raw_270.unwrap_or_default();
        check.raw_response = self.raw_271.unwrap_or_default();
        Ok(check)
    }
}

const SELECT_ONE: &str = "SELECT tenant_id, id, patient_ref, payer_id, payer_name, member_id, \
     group_number, plan_name, subscriber_first_name, subscriber_last_name, subscriber_birth_date, \
     relationship_to_subscriber, coverage_order, effective_date, termination_date, created_at, \
     updated_at FROM coverages WHERE tenant_id = $1 AND id = $2";

const SELECT_PAGE: &str = "SELECT tenant_id, id, patient_ref, payer_id, payer_name, member_id, \
     group_number, plan_name, subscriber_first_name, subscriber_last_name, subscriber_birth_date, \
     relationship_to_subscriber, coverage_order, effective_date, termination_date, created_at, \
     updated_at FROM coverages \
     WHERE tenant_id = $1 AND ($2 IS NULL OR patient_ref = $2) AND ($3 IS NULL OR payer_id = $3) \
     AND ($4 IS NULL OR id > $4) ORDER BY id LIMIT $5";

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
            sqlx::query_as(SELECT_ONE)
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
            sqlx::query_as(SELECT_PAGE)
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

    async fn insert_check(&self, check: &StoredCheck) -> Result<Inserted, StoreError> {
        let mut out = self.insert_checks(std::slice::from_ref(check)).await?;
        out.pop().ok_or_else(|| {
            StoreError::from(StorageError::corrupt(
                "eligibility check",
                "insert returned no outcome".to_owned(),
            ))
        })
    }

    async fn insert_checks(&self, checks: &[StoredCheck]) -> Result<Vec<Inserted>, StoreError> {
        let rows = checks
            .iter()
            .map(CheckRow::from_model)
            .collect::<Result<Vec<_>, _>>()?;
        let mut inserted = std::collections::HashSet::new();
        let mut tx = self.db.begin().await?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            inserted.extend(Self::insert_rows(&mut tx, chunk).await?);
        }
        tx.commit().await?;
        let mut out = Vec::with_capacity(checks.len());
        for check in checks {
            if inserted.contains(&check.check.id) {
                out.push(Inserted::New);
                continue;
            }
            let key = IdempotencyKey::parse(&check.idempotency_key).map_err(|e| {
                StoreError::from(StorageError::corrupt("idempotency key", e.to_string()))
            })?;
            match self.find_check_by_key(&check.tenant_id, &key).await? {
                Some((fingerprint, existing)) => {
                    out.push(Inserted::Existing(fingerprint, Box::new(existing)));
                }
                None => {
                    return Err(StoreError::from(StorageError::corrupt(
                        "eligibility check",
                        "insert conflicted but no check holds the key".to_owned(),
                    )));
                }
            }
        }
        Ok(out)
    }

    async fn find_check_by_key(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
    ) -> Result<Option<(String, pb::EligibilityCheck)>, StoreError> {
        let row: Option<CheckReadRow> = with_db!(self.db, |pool| {
            sqlx::query_as(
                "SELECT request_fingerprint, detail, NULL AS raw_270, NULL AS raw_271 \
                 FROM eligibility_checks WHERE tenant_id = $1 AND idempotency_key = $2",
            )
            .bind(tenant.as_str())
            .bind(key.as_str())
            .fetch_optional(pool)
            .await?
        });
        row.map(|r| {
            let fingerprint = r.request_fingerprint.clone();
            r.into_proto().map(|c| (fingerprint, c))
        })
        .transpose()
    }

    async fn get_check(
        &self,
        tenant: &TenantId,
        id: &EligibilityCheckId,
        include_raw: bool,
    ) -> Result<Option<pb::EligibilityCheck>, StoreError> {
        let sql = if include_raw {
            "SELECT request_fingerprint, detail, raw_270, raw_271 FROM eligibility_checks \
             WHERE tenant_id = $1 AND id = $2"
        } else {
            "SELECT request_fingerprint, detail, NULL AS raw_270, NULL AS raw_271 \
             FROM eligibility_checks WHERE tenant_id = $1 AND id = $2"
        };
        let row: Option<CheckReadRow> = with_db!(self.db, |pool| {
            sqlx::query_as(sql)
                .bind(tenant.as_str())
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        row.map(CheckReadRow::into_proto).transpose()
    }

    async fn list_checks(
        &self,
        tenant: &TenantId,
        filter: &CheckFilter,
        after: Option<&EligibilityCheckId>,
        limit: u32,
    ) -> Result<Vec<pb::EligibilityCheck>, StoreError> {
        let after = after.map(ToString::to_string);
        let coverage = filter.coverage_id.map(|c| c.to_string());
        let dos_from = filter.date_of_service_from.map(format_iso_date);
        let dos_to = filter.date_of_service_to.map(format_iso_date);
        const SQL: &str = "SELECT request_fingerprint, detail, NULL AS raw_270, NULL AS raw_271 FROM eligibility_checks \
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
                .bind(filter.status.as_deref())
                .bind(dos_from.as_deref())
                .bind(dos_to.as_deref())
                .bind(filter.created_from_micros)
                .bind(filter.created_before_micros)
                .bind(after.as_deref())
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(CheckReadRow::into_proto).collect()
    }

    async fn latest_completed_check(
        &self,
        tenant: &TenantId,
        coverage_id: &CoverageId,
        date_of_service: NaiveDate,
    ) -> Result<Option<pb::EligibilityCheck>, StoreError> {
        let row: Option<CheckReadRow> = with_db!(self.db, |pool| {
            sqlx::query_as(
                "SELECT request_fingerprint, detail, NULL AS raw_270, NULL AS raw_271 \
                 FROM eligibility_checks WHERE tenant_id = $1 AND coverage_id = $2 \
                 AND date_of_service = $3 AND status = 'COMPLETED' ORDER BY id DESC LIMIT 1",
            )
            .bind(tenant.as_str())
            .bind(coverage_id.to_string())
            .bind(format_iso_date(date_of_service))
            .fetch_optional(pool)
            .await?
        });
        row.map(CheckReadRow::into_proto).transpose()
    }

    async fn create_estimate(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        request_fingerprint: &[u8],
        estimate: &pb::CostEstimate,
    ) -> Result<pb::CostEstimate, StoreError> {
        let mut tx = self.db.begin().await?;
        let fingerprint = Fingerprint::of(request_fingerprint);
        let claim = idempotency::reserve_id(
            &mut tx,
            tenant.as_str(),
            ESTIMATE_SCOPE,
            key.as_str(),
            &fingerprint,
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
                let cents = |what: &'static str, s: &str| -> Result<i64, StoreError> {
                    medbill_domain::Money::parse(s)
                        .and_then(|m| m.to_minor_units())
                        .map_err(|e| StoreError::from(StorageError::corrupt(what, e.to_string())))
                };
                let total_patient = estimate
                    .total
                    .as_ref()
                    .map(|t| cents("total patient responsibility", &t.patient_responsibility))
                    .transpose()?
                    .unwrap_or(0);
                let created_at = estimate
                    .created_at
                    .as_ref()
                    .map(|t| t.seconds * 1_000_000 + i64::from(t.nanos / 1_000))
                    .unwrap_or_else(time::now_micros);
                with_tx!(tx, |conn| {
                    sqlx::query(
                        "INSERT INTO cost_estimates (tenant_id, id, eligibility_check_id, coverage_id, \
                         patient_ref, date_of_service, self_pay, total_charge, total_allowed, \
                         total_patient, detail, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    )
                    .bind(tenant.as_str())
                    .bind(&estimate.id)
                    .bind(non_empty(&estimate.eligibility_check_id))
                    .bind(non_empty(&estimate.coverage_id))
                    .bind(&estimate.patient_ref)
                    .bind(&estimate.date_of_service)
                    .bind(estimate.self_pay)
                    .bind(cents("total charge", &estimate.total_charge)?)
                    .bind(cents("total allowed", &estimate.total_allowed)?)
                    .bind(total_patient)
                    .bind(estimate.encode_to_vec())
                    .bind(created_at)
                    .execute(&mut *conn)
                    .await?;
                });
                idempotency::complete(&mut tx, pending, estimate.id.as_bytes()).await?;
                tx.commit().await?;
                Ok(estimate.clone())
            }
        }
    }

    async fn get_estimate(
        &self,
        tenant: &TenantId,
        id: &EstimateId,
    ) -> Result<Option<pb::CostEstimate>, StoreError> {
        let detail: Option<(Vec<u8>,)> = with_db!(self.db, |pool| {
            sqlx::query_as(SELECT_ESTIMATE)
                .bind(tenant.as_str())
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        detail.map(|(d,)| decode_estimate(&d)).transpose()
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
