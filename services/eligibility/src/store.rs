//! Persistence of coverages: the [`EligibilityStore`] trait and its one implementation over
//! PostgreSQL and SQLite ([`SqlEligibilityStore`], written once with portable SQL through
//! `medbill_storage`'s `with_tx!`/`with_db!`).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use medbill_domain::{CoverageId, IdempotencyKey, TenantId, format_iso_date, parse_iso_date};
use medbill_storage::idempotency::{self, Claim, Fingerprint};
use medbill_storage::{Database, StorageError, Tx, time, with_db, with_tx};
use sqlx::migrate::Migrator;

use crate::model::{Coverage, CoverageFilter, CoverageOrder, NewCoverage};

/// The service's PostgreSQL migrations, embedded.
pub static PG_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");
/// The service's SQLite migrations, embedded.
pub static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// The namespace (PostgreSQL schema, SQLite file suffix) of the eligibility service's tables.
pub const NAMESPACE: &str = "eligibility";

/// The idempotency scope of coverage creation.
pub const CREATE_COVERAGE_SCOPE: &str = "eligibility.CreateCoverage";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The idempotency key was already used for a different request.
    #[error("idempotency key {key:?} was already used with a different request")]
    IdempotencyKeyReused {
        /// The reused key.
        key: String,
    },
    /// A stored row does not have the shape this store writes.
    #[error("corrupt {what} in storage: {detail}")]
    Corrupt {
        /// Which value is corrupt.
        what: &'static str,
        /// What is wrong with it.
        detail: String,
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
        let claim = idempotency::claim(
            &mut tx,
            tenant.as_str(),
            CREATE_COVERAGE_SCOPE,
            key.as_str(),
            &fingerprint,
        )
        .await?;
        match claim {
            Claim::Conflict => Err(StoreError::IdempotencyKeyReused {
                key: key.as_str().to_owned(),
            }),
            Claim::Replay(response) => {
                let id = String::from_utf8(response).map_err(|_| StoreError::Corrupt {
                    what: "idempotency response",
                    detail: "coverage id is not UTF-8".to_owned(),
                })?;
                let found = self.get_in(&mut tx, tenant, &id).await?;
                tx.rollback().await?;
                found.ok_or_else(|| StoreError::Corrupt {
                    what: "idempotency response",
                    detail: format!("coverage {id} recorded for the key does not exist"),
                })
            }
            Claim::New(pending) => {
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
    time::from_micros(micros).ok_or_else(|| StoreError::Corrupt {
        what: "timestamp",
        detail: format!("{micros} microseconds is out of range"),
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
        let corrupt = |what: &'static str, detail: String| StoreError::Corrupt { what, detail };
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
