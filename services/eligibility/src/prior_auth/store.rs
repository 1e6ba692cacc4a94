//! Persistence of prior authorizations, in the eligibility service's database: one row per
//! authorization (its answer kept whole as the protobuf message, with the columns lists filter on)
//! and one row per 278 exchange (raw X12 both ways). Written once for PostgreSQL and SQLite.

use medbill_domain::{PriorAuthorizationId, TenantId};
use medbill_proto::eligibility::v1 as pb;
use medbill_storage::{Database, Tx, with_db, with_tx};
use prost::Message;

use crate::store::StoreError;

/// An authorization as stored: the message answered, without its exchanges.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// The tenant.
    pub tenant: TenantId,
    /// The authorization (`exchanges` empty).
    pub authorization: pb::PriorAuthorization,
}

/// One exchange to write.
#[derive(Debug, Clone)]
pub struct NewExchange {
    /// REQUEST or INQUIRY.
    pub kind: &'static str,
    /// The status it led to.
    pub outcome: pb::PriorAuthorizationStatus,
    /// Why it failed, in plain words.
    pub error_message: Option<String>,
    /// The 278 sent.
    pub raw_request: Vec<u8>,
    /// What came back.
    pub raw_response: Option<Vec<u8>>,
    /// Transport attempts.
    pub payer_attempts: u32,
    /// Unix micros.
    pub created_at: i64,
}

/// What a list asks for.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this patient.
    pub patient_ref: Option<String>,
    /// Only this coverage.
    pub coverage_id: Option<String>,
    /// Only these statuses (their names); empty for all.
    pub statuses: Vec<&'static str>,
    /// Requested dates overlapping from this day (YYYY-MM-DD)...
    pub requested_from: Option<String>,
    /// ...to this day.
    pub requested_to: Option<String>,
    /// Created at or after (unix micros).
    pub created_from: Option<i64>,
    /// Created before (unix micros).
    pub created_before: Option<i64>,
}

/// Prior authorizations over the service's database (migrations already run).
#[derive(Debug, Clone)]
pub struct PriorAuthStore {
    db: Database,
}

#[derive(sqlx::FromRow)]
struct DetailRow {
    tenant_id: String,
    detail: Vec<u8>,
}

#[derive(sqlx::FromRow)]
struct ExchangeRow {
    kind: String,
    outcome: String,
    error_message: Option<String>,
    raw_request: Vec<u8>,
    raw_response: Option<Vec<u8>>,
    created_at: i64,
}

/// The status name stored (the enum name without its prefix).
pub fn status_name(s: pb::PriorAuthorizationStatus) -> &'static str {
    s.as_str_name()
        .strip_prefix("PRIOR_AUTHORIZATION_STATUS_")
        .unwrap_or("UNSPECIFIED")
}

fn status_of(name: &str) -> pb::PriorAuthorizationStatus {
    pb::PriorAuthorizationStatus::from_str_name(&format!("PRIOR_AUTHORIZATION_STATUS_{name}"))
        .unwrap_or_default()
}

fn decode(row: DetailRow) -> Result<Stored, StoreError> {
    let authorization = pb::PriorAuthorization::decode(row.detail.as_slice()).map_err(|e| {
        StoreError::Storage(medbill_storage::StorageError::corrupt(
            "prior_authorizations.detail",
            e.to_string(),
        ))
    })?;
    let tenant = TenantId::parse(&row.tenant_id).map_err(|e| {
        StoreError::Storage(medbill_storage::StorageError::corrupt(
            "prior_authorizations.tenant_id",
            e.to_string(),
        ))
    })?;
    Ok(Stored {
        tenant,
        authorization,
    })
}

impl PriorAuthStore {
    /// Wraps a migrated database.
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Returns the database (for transactions and idempotency keys).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Writes a new authorization and its first exchange in the caller's transaction.
    pub async fn insert(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        a: &pb::PriorAuthorization,
        exchange: &NewExchange,
    ) -> Result<(), StoreError> {
        let dates = a.requested_dates.clone().unwrap_or_default();
        let detail = a.encode_to_vec();
        let micros = exchange.created_at;
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO prior_authorizations (tenant_id, id, coverage_id, patient_ref, \
                 payer_id, status, authorization_number, payer_reference, requested_from, \
                 requested_to, detail, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)",
            )
            .bind(tenant.as_str())
            .bind(&a.id)
            .bind(&a.coverage_id)
            .bind(&a.patient_ref)
            .bind(&a.payer_id)
            .bind(status_name(a.status()))
            .bind(non_empty(&a.authorization_number))
            .bind(non_empty(&a.payer_reference))
            .bind(&dates.from_date)
            .bind(&dates.to_date)
            .bind(&detail)
            .bind(micros)
            .execute(&mut *conn)
            .await?;
        });
        self.add_exchange(tx, tenant, &a.id, exchange).await
    }

    /// Stores a new decision of an authorization and the exchange that brought it.
    pub async fn update(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        a: &pb::PriorAuthorization,
        exchange: &NewExchange,
    ) -> Result<(), StoreError> {
        let detail = a.encode_to_vec();
        with_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE prior_authorizations SET status = $3, authorization_number = $4, \
                 payer_reference = $5, detail = $6, updated_at = $7 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_str())
            .bind(&a.id)
            .bind(status_name(a.status()))
            .bind(non_empty(&a.authorization_number))
            .bind(non_empty(&a.payer_reference))
            .bind(&detail)
            .bind(exchange.created_at)
            .execute(&mut *conn)
            .await?;
        });
        self.add_exchange(tx, tenant, &a.id, exchange).await
    }

    /// Appends an exchange (a failed inquiry leaves the authorization as it was) and marks the
    /// authorization asked at its time, so the poller moves on to others.
    pub async fn add_exchange(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        id: &str,
        e: &NewExchange,
    ) -> Result<(), StoreError> {
        let attempts = i64::from(e.payer_attempts);
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO prior_authorization_exchanges (tenant_id, authorization_id, seq, kind, \
                 outcome, error_message, raw_request, raw_response, payer_attempts, created_at) \
                 SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5, $6, $7, $8, $9 \
                 FROM prior_authorization_exchanges WHERE tenant_id = $1 AND authorization_id = $2",
            )
            .bind(tenant.as_str())
            .bind(id)
            .bind(e.kind)
            .bind(status_name(e.outcome))
            .bind(&e.error_message)
            .bind(&e.raw_request)
            .bind(&e.raw_response)
            .bind(attempts)
            .bind(e.created_at)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE prior_authorizations SET updated_at = $3 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_str())
            .bind(id)
            .bind(e.created_at)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// Returns one authorization of the tenant.
    pub async fn get(
        &self,
        tenant: &TenantId,
        id: &PriorAuthorizationId,
    ) -> Result<Option<Stored>, StoreError> {
        let row: Option<DetailRow> = with_db!(self.db, |pool| {
            sqlx::query_as(
                "SELECT tenant_id, detail FROM prior_authorizations \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_str())
            .bind(id.to_string())
            .fetch_optional(pool)
            .await?
        });
        row.map(decode).transpose()
    }

    /// Returns the exchanges of an authorization, oldest first.
    pub async fn exchanges(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<Vec<pb::PriorAuthorizationExchange>, StoreError> {
        let rows: Vec<ExchangeRow> = with_db!(self.db, |pool| {
            sqlx::query_as(
                "SELECT kind, outcome, error_message, raw_request, raw_response, created_at \
                 FROM prior_authorization_exchanges WHERE tenant_id = $1 AND authorization_id = $2 \
                 ORDER BY seq",
            )
            .bind(tenant.as_str())
            .bind(id)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| pb::PriorAuthorizationExchange {
                kind: r.kind,
                outcome: status_of(&r.outcome) as i32,
                error_message: r.error_message.unwrap_or_default(),
                raw_request: r.raw_request,
                raw_response: r.raw_response.unwrap_or_default(),
                created_at: medbill_storage::time::from_micros(r.created_at)
                    .map(medbill_runtime::fields::timestamp),
            })
            .collect())
    }

    /// Lists a tenant's authorizations in id order after `after`.
    pub async fn list(
        &self,
        tenant: &TenantId,
        f: &ListFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<pb::PriorAuthorization>, StoreError> {
        // At most 9 statuses: bound one by one, unused ones as NULL.
        let mut statuses: [Option<&str>; 9] = [None; 9];
        for (slot, s) in statuses.iter_mut().zip(&f.statuses) {
            *slot = Some(s);
        }
        let any_status = f.statuses.is_empty();
        const SQL: &str = "SELECT tenant_id, detail FROM prior_authorizations \
             WHERE tenant_id = $1 AND ($2 IS NULL OR patient_ref = $2) \
             AND ($3 IS NULL OR coverage_id = $3) \
             AND ($4 OR status IN ($5, $6, $7, $8, $9, $10, $11, $12, $13)) \
             AND ($14 IS NULL OR requested_to >= $14) AND ($15 IS NULL OR requested_from <= $15) \
             AND ($16 IS NULL OR created_at >= $16) AND ($17 IS NULL OR created_at < $17) \
             AND ($18 IS NULL OR id > $18) ORDER BY id LIMIT $19";
        let rows: Vec<DetailRow> = with_db!(self.db, |pool| {
            let mut q = sqlx::query_as(SQL)
                .bind(tenant.as_str())
                .bind(f.patient_ref.as_deref())
                .bind(f.coverage_id.as_deref())
                .bind(any_status);
            for s in statuses {
                q = q.bind(s);
            }
            q.bind(f.requested_from.as_deref())
                .bind(f.requested_to.as_deref())
                .bind(f.created_from)
                .bind(f.created_before)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter()
            .map(|r| decode(r).map(|s| s.authorization))
            .collect()
    }

    /// Returns undecided (PENDED or PENDING) authorizations of every tenant last asked before
    /// `asked_before` (unix micros), least recently asked first.
    pub async fn undecided(
        &self,
        asked_before: i64,
        limit: u32,
    ) -> Result<Vec<Stored>, StoreError> {
        let rows: Vec<DetailRow> = with_db!(self.db, |pool| {
            sqlx::query_as(
                "SELECT tenant_id, detail FROM prior_authorizations \
                 WHERE status IN ('PENDED', 'PENDING') AND updated_at < $1 \
                 ORDER BY updated_at LIMIT $2",
            )
            .bind(asked_before)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(decode).collect()
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}
