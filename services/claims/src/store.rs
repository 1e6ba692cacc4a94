//! Persistence of claims: the [`ClaimStore`] trait and its one implementation, [`SqlClaimStore`], whose
//! queries are written once and run on PostgreSQL and SQLite (see `medbill_storage`'s store pattern).
//!
//! A create runs in one transaction: the idempotency key, the claim header, its diagnoses, lines and the
//! first status-history entry are written together or not at all.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use medbill_domain::{
    ClaimId, ClaimLineId, IdempotencyKey, Money, Npi, PatientControlNumber, TenantId,
    format_iso_date, parse_iso_date,
};
use medbill_storage::idempotency::{self, Fingerprint};
use medbill_storage::{Database, StorageError, time, with_db, with_tx};
use rust_decimal::Decimal;
use sqlx::migrate::Migrator;
use thiserror::Error;
use uuid::Uuid;

use crate::model::{
    Claim, ClaimFilter, ClaimLine, ClaimStatus, ClaimType, ClaimValidationError, FrequencyCode,
    NewClaim, StatusChange, StatusChangeSource,
};

/// The PostgreSQL migrations of the claims service.
pub static PG_MIGRATOR: Migrator = sqlx::migrate!("migrations/postgres");
/// The SQLite migrations of the claims service.
pub static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// The storage namespace (PostgreSQL schema, SQLite file suffix) of the claims service.
pub const NAMESPACE: &str = "claims";

/// The idempotency scope of claim creation.
pub const CREATE_CLAIM_SCOPE: &str = "medbill.claims.v1.ClaimsService/CreateClaim";

/// Errors of the claims store; each names what is wrong precisely.
#[derive(Debug, Error)]
pub enum ClaimStoreError {
    /// Another claim of the tenant already uses this CLM01.
    #[error("a claim with patient control number {0} already exists")]
    DuplicatePatientControlNumber(String),
    /// The idempotency key was used before with a different request.
    #[error("idempotency key {0:?} was already used with a different request")]
    IdempotencyKeyReused(String),
    /// The claim breaks a validation rule.
    #[error(transparent)]
    Invalid(#[from] ClaimValidationError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for ClaimStoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Storage(StorageError::Database(e))
    }
}

/// The result of a create: the claim and whether it was replayed from an earlier call with the same key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The claim (as it is stored now).
    pub claim: Claim,
    /// True when the idempotency key had already created this claim and nothing was written.
    pub replayed: bool,
}

/// Stores claims; every method is scoped to one tenant.
#[async_trait]
pub trait ClaimStore: Send + Sync {
    /// Creates a claim in status DRAFT under an idempotency key.
    ///
    /// `fingerprint` identifies the request: the same key with the same fingerprint returns the claim it
    /// created (`replayed`), with another fingerprint it is [`ClaimStoreError::IdempotencyKeyReused`].
    async fn create_claim(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        claim: &NewClaim,
    ) -> Result<Created, ClaimStoreError>;

    /// Returns the claim with this id, or `None` when the tenant has none.
    async fn get_claim(
        &self,
        tenant: &TenantId,
        id: ClaimId,
    ) -> Result<Option<Claim>, ClaimStoreError>;

    /// Returns up to `limit` claims matching `filter` with ids greater than `after`, in id order.
    async fn list_claims(
        &self,
        tenant: &TenantId,
        filter: &ClaimFilter,
        after: Option<ClaimId>,
        limit: u32,
    ) -> Result<Vec<Claim>, ClaimStoreError>;

    /// Returns a claim's status history, oldest first (empty when the tenant has no such claim).
    async fn status_history(
        &self,
        tenant: &TenantId,
        id: ClaimId,
    ) -> Result<Vec<StatusChange>, ClaimStoreError>;

    /// Returns up to `limit` status changes of the tenant with a sequence greater than
    /// `after_sequence`, in sequence order (what WatchClaims replays).
    async fn status_changes_after(
        &self,
        tenant: &TenantId,
        after_sequence: u64,
        limit: u32,
    ) -> Result<Vec<StatusChange>, ClaimStoreError>;
}

/// Runs the claims migrations on `db` and returns the store over it.
pub async fn open_store(db: Database) -> Result<Arc<dyn ClaimStore>, StorageError> {
    db.migrate(&PG_MIGRATOR, &SQLITE_MIGRATOR).await?;
    Ok(Arc::new(SqlClaimStore::new(db)))
}

/// The [`ClaimStore`] over PostgreSQL or SQLite.
#[derive(Debug, Clone)]
pub struct SqlClaimStore {
    db: Database,
}

impl SqlClaimStore {
    /// Wraps a migrated database.
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

#[derive(sqlx::FromRow)]
struct ClaimRow {
    id: String,
    patient_control_number: String,
    claim_type: String,
    status: String,
    frequency_code: String,
    payer_claim_control_number: Option<String>,
    coverage_id: String,
    payer_id: String,
    patient_ref: String,
    billing_provider_npi: String,
    rendering_provider_npi: Option<String>,
    place_of_service: Option<String>,
    facility_type_code: Option<String>,
    total_charge_cents: i64,
    service_date_from: String,
    service_date_to: String,
    encounter_ref: Option<String>,
    created_at: i64,
    updated_at: i64,
}

#[derive(sqlx::FromRow)]
struct DiagnosisRow {
    claim_id: String,
    code: String,
}

#[derive(sqlx::FromRow)]
struct LineRow {
    claim_id: String,
    line_number: i32,
    line_control_number: String,
    procedure_code: String,
    modifiers: String,
    revenue_code: Option<String>,
    charge_cents: i64,
    units: String,
    service_date: String,
    diagnosis_pointers: String,
}

#[derive(sqlx::FromRow)]
struct HistoryRow {
    id: String,
    sequence: i64,
    claim_id: String,
    patient_control_number: String,
    from_status: Option<String>,
    to_status: String,
    source: String,
    source_id: String,
    reason: String,
    at: i64,
}

macro_rules! history_select {
    () => {
        "SELECT h.id, h.sequence, h.claim_id, c.patient_control_number, h.from_status, h.to_status, \
         h.source, h.source_id, h.reason, h.at \
         FROM claim_status_history h JOIN claims c ON c.tenant_id = h.tenant_id AND c.id = h.claim_id "
    };
}

fn change_from_row(r: HistoryRow) -> Result<StatusChange, ClaimStoreError> {
    Ok(StatusChange {
        id: Uuid::try_parse(&r.id).map_err(|e| corrupt("status history id", e.to_string()))?,
        sequence: u64::try_from(r.sequence)
            .map_err(|_| corrupt("status history sequence", r.sequence.to_string()))?,
        claim_id: ClaimId::parse(&r.claim_id)
            .map_err(|e| corrupt("status history claim id", e.to_string()))?,
        patient_control_number: PatientControlNumber::parse(&r.patient_control_number)
            .map_err(|e| corrupt("patient control number", e.to_string()))?,
        from: r
            .from_status
            .as_deref()
            .map(|s| code::<ClaimStatus>(s, "status history from"))
            .transpose()?,
        to: code::<ClaimStatus>(&r.to_status, "status history to")?,
        source: code::<StatusChangeSource>(&r.source, "status history source")?,
        source_id: r.source_id,
        reason: r.reason,
        at: timestamp(r.at, "status history at")?,
    })
}

/// One status transition to record with [`record_status_change`].
#[derive(Debug, Clone, Copy)]
pub struct Transition<'a> {
    /// The claim.
    pub claim_id: &'a str,
    /// The previous status (`None` when the claim is created).
    pub from: Option<ClaimStatus>,
    /// The new status.
    pub to: ClaimStatus,
    /// What caused it.
    pub source: StatusChangeSource,
    /// Id of the causing record, or "".
    pub source_id: &'a str,
    /// Plain-language reason (no PHI).
    pub reason: &'a str,
    /// When, in unix micros.
    pub at: i64,
}

/// Appends a status change to the history in the caller's transaction and returns its per-tenant
/// sequence number. The tenant's sequence row stays locked until the transaction ends, so numbers are
/// gap-free and commit in order.
pub async fn record_status_change(
    tx: &mut medbill_storage::Tx,
    tenant: &str,
    t: Transition<'_>,
) -> Result<u64, ClaimStoreError> {
    let sequence: i64 = with_tx!(tx, |conn| {
        sqlx::query_scalar(
            "INSERT INTO claim_event_sequences (tenant_id, last_sequence) VALUES ($1, 1) \
             ON CONFLICT (tenant_id) DO UPDATE SET last_sequence = claim_event_sequences.last_sequence + 1 \
             RETURNING last_sequence",
        )
        .bind(tenant)
        .fetch_one(&mut *conn)
        .await?
    });
    let id = Uuid::now_v7().to_string();
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO claim_status_history (tenant_id, id, sequence, claim_id, from_status, to_status, \
             source, source_id, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(tenant)
        .bind(&id)
        .bind(sequence)
        .bind(t.claim_id)
        .bind(t.from.map(ClaimStatus::as_str))
        .bind(t.to.as_str())
        .bind(t.source.as_str())
        .bind(t.source_id)
        .bind(t.reason)
        .bind(t.at)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    u64::try_from(sequence).map_err(|_| corrupt("claim event sequence", sequence.to_string()))
}

/// The list filter, shared by the header query and the detail subqueries so they select the same page.
/// `$1` tenant, `$2` statuses (comma separated), `$3` patient_ref, `$4` payer_id, `$5` from date, `$6` to
/// date, `$7` after id, `$8` limit, `$9` patient control number, `$10` coverage id. A status set travels as
/// one comma-separated parameter so the SQL stays static and portable.
macro_rules! list_filter {
    () => {
        "SELECT id FROM claims WHERE tenant_id = $1 \
         AND ($2 IS NULL OR (',' || $2 || ',') LIKE ('%,' || status || ',%')) \
         AND ($9 IS NULL OR patient_control_number = $9) \
         AND ($10 IS NULL OR coverage_id = $10) \
         AND ($3 IS NULL OR patient_ref = $3) \
         AND ($4 IS NULL OR payer_id = $4) \
         AND ($5 IS NULL OR service_date_to >= $5) \
         AND ($6 IS NULL OR service_date_from <= $6) \
         AND ($7 IS NULL OR id > $7) \
         ORDER BY id LIMIT $8"
    };
}

macro_rules! claim_columns {
    () => {
        "id, patient_control_number, claim_type, status, frequency_code, \
         payer_claim_control_number, coverage_id, payer_id, patient_ref, billing_provider_npi, \
         rendering_provider_npi, place_of_service, facility_type_code, total_charge_cents, \
         service_date_from, service_date_to, encounter_ref, created_at, updated_at"
    };
}

macro_rules! line_columns {
    () => {
        "claim_id, line_number, line_control_number, procedure_code, modifiers, revenue_code, \
         charge_cents, units, service_date, diagnosis_pointers"
    };
}

fn corrupt(what: &'static str, detail: impl Into<String>) -> ClaimStoreError {
    ClaimStoreError::from(StorageError::corrupt(what, detail.into()))
}

fn cents(m: Money, field: &'static str) -> Result<i64, ClaimStoreError> {
    m.to_minor_units().map_err(|e| {
        ClaimStoreError::Invalid(ClaimValidationError {
            field: field.to_owned(),
            message: e.to_string(),
        })
    })
}

fn date(s: &str, what: &'static str) -> Result<NaiveDate, ClaimStoreError> {
    parse_iso_date(s).map_err(|e| corrupt(what, e.to_string()))
}

fn timestamp(micros: i64, what: &'static str) -> Result<DateTime<Utc>, ClaimStoreError> {
    time::from_micros(micros).ok_or_else(|| corrupt(what, format!("{micros} is out of range")))
}

fn code<T: FromStr>(s: &str, what: &'static str) -> Result<T, ClaimStoreError>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| corrupt(what, e.to_string()))
}

fn split_list(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').filter(|p| !p.is_empty())
}

fn line_from_row(row: LineRow) -> Result<ClaimLine, ClaimStoreError> {
    let diagnosis_pointers = split_list(&row.diagnosis_pointers)
        .map(|p| code::<u32>(p, "claim line diagnosis pointer"))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ClaimLine {
        line_number: u32::try_from(row.line_number)
            .map_err(|_| corrupt("claim line number", row.line_number.to_string()))?,
        line_control_number: row.line_control_number,
        procedure_code: row.procedure_code,
        modifiers: split_list(&row.modifiers).map(str::to_owned).collect(),
        revenue_code: row.revenue_code,
        charge: Money::from_minor_units(row.charge_cents),
        units: Decimal::from_str_exact(&row.units)
            .map_err(|e| corrupt("claim line units", format!("{:?}: {e}", row.units)))?,
        service_date: date(&row.service_date, "claim line service date")?,
        diagnosis_pointers,
    })
}

fn claim_from_rows(
    row: ClaimRow,
    diagnoses: Vec<String>,
    lines: Vec<ClaimLine>,
) -> Result<Claim, ClaimStoreError> {
    Ok(Claim {
        id: ClaimId::parse(&row.id).map_err(|e| corrupt("claim id", e.to_string()))?,
        patient_control_number: PatientControlNumber::parse(&row.patient_control_number)
            .map_err(|e| corrupt("patient control number", e.to_string()))?,
        claim_type: code::<ClaimType>(&row.claim_type, "claim type")?,
        status: code::<ClaimStatus>(&row.status, "claim status")?,
        frequency_code: code::<FrequencyCode>(&row.frequency_code, "claim frequency code")?,
        payer_claim_control_number: row.payer_claim_control_number,
        coverage_id: row.coverage_id,
        payer_id: row.payer_id,
        patient_ref: row.patient_ref,
        billing_provider_npi: Npi::parse(&row.billing_provider_npi)
            .map_err(|e| corrupt("billing provider NPI", e.to_string()))?,
        rendering_provider_npi: row
            .rendering_provider_npi
            .as_deref()
            .map(Npi::parse)
            .transpose()
            .map_err(|e| corrupt("rendering provider NPI", e.to_string()))?,
        place_of_service: row.place_of_service,
        facility_type_code: row.facility_type_code,
        diagnoses,
        lines,
        total_charge: Money::from_minor_units(row.total_charge_cents),
        service_date_from: date(&row.service_date_from, "claim service date from")?,
        service_date_to: date(&row.service_date_to, "claim service date to")?,
        encounter_ref: row.encounter_ref,
        created_at: timestamp(row.created_at, "claim created_at")?,
        updated_at: timestamp(row.updated_at, "claim updated_at")?,
    })
}

/// Groups detail rows by claim id and builds the claims in header order.
fn assemble(
    headers: Vec<ClaimRow>,
    diagnoses: Vec<DiagnosisRow>,
    lines: Vec<LineRow>,
) -> Result<Vec<Claim>, ClaimStoreError> {
    let mut dx: HashMap<String, Vec<String>> = HashMap::new();
    for d in diagnoses {
        dx.entry(d.claim_id).or_default().push(d.code);
    }
    let mut ln: HashMap<String, Vec<ClaimLine>> = HashMap::new();
    for l in lines {
        let claim_id = l.claim_id.clone();
        ln.entry(claim_id).or_default().push(line_from_row(l)?);
    }
    headers
        .into_iter()
        .map(|h| {
            let d = dx.remove(&h.id).unwrap_or_default();
            let l = ln.remove(&h.id).unwrap_or_default();
            claim_from_rows(h, d, l)
        })
        .collect()
}

fn join<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[async_trait]
impl ClaimStore for SqlClaimStore {
    async fn create_claim(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        fingerprint: &Fingerprint,
        claim: &NewClaim,
    ) -> Result<Created, ClaimStoreError> {
        let totals = claim.validate()?;
        let total_cents = cents(totals.total_charge, "total_charge")?;
        let mut line_cents = Vec::with_capacity(claim.lines.len());
        for (i, line) in claim.lines.iter().enumerate() {
            line_cents.push(cents(line.charge, "lines[].charge").map_err(|_| {
                ClaimStoreError::Invalid(ClaimValidationError {
                    field: format!("lines[{i}].charge"),
                    message: format!("{} does not fit in 64-bit cents", line.charge),
                })
            })?);
        }
        let t = tenant.as_str();
        let mut tx = self.db.begin().await?;
        let pending =
            match idempotency::claim_id(&mut tx, t, CREATE_CLAIM_SCOPE, key.as_str(), fingerprint)
                .await?
            {
                idempotency::IdClaim::New(pending) => pending,
                idempotency::IdClaim::Conflict => {
                    return Err(ClaimStoreError::IdempotencyKeyReused(
                        key.as_str().to_owned(),
                    ));
                }
                idempotency::IdClaim::Replay(id) => {
                    drop(tx);
                    let id = ClaimId::parse(&id)
                        .map_err(|_| corrupt("idempotency response", "not a claim id"))?;
                    let claim = self.get_claim(tenant, id).await?.ok_or_else(|| {
                        idempotency::replayed_entity_missing("claim", &id.to_string())
                    })?;
                    return Ok(Created {
                        claim,
                        replayed: true,
                    });
                }
            };

        let id = ClaimId::new();
        let id_text = id.to_string();
        let now = time::now_micros();
        let status = ClaimStatus::Draft;
        let from = format_iso_date(totals.service_date_from);
        let to = format_iso_date(totals.service_date_to);
        let inserted = with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO claims (tenant_id, id, patient_control_number, claim_type, status, \
                 frequency_code, payer_claim_control_number, coverage_id, payer_id, patient_ref, \
                 billing_provider_npi, rendering_provider_npi, place_of_service, facility_type_code, \
                 total_charge_cents, service_date_from, service_date_to, encounter_ref, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $19)",
            )
            .bind(t)
            .bind(&id_text)
            .bind(claim.patient_control_number.as_str())
            .bind(claim.claim_type.as_str())
            .bind(status.as_str())
            .bind(claim.frequency_code.as_str())
            .bind(claim.payer_claim_control_number.as_deref())
            .bind(&claim.coverage_id)
            .bind(&claim.payer_id)
            .bind(&claim.patient_ref)
            .bind(claim.billing_provider_npi.as_str())
            .bind(claim.rendering_provider_npi.as_ref().map(Npi::as_str))
            .bind(claim.place_of_service.as_deref())
            .bind(claim.facility_type_code.as_deref())
            .bind(total_cents)
            .bind(&from)
            .bind(&to)
            .bind(claim.encounter_ref.as_deref())
            .bind(now)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected())
        });
        if let Err(e) = inserted {
            // A fresh UUID v7 cannot collide, so the only unique key this insert can break is
            // (tenant_id, patient_control_number).
            if medbill_storage::error::is_unique_violation(&e) {
                return Err(ClaimStoreError::DuplicatePatientControlNumber(
                    claim.patient_control_number.as_str().to_owned(),
                ));
            }
            return Err(e.into());
        }

        for (i, code) in claim.diagnoses.iter().enumerate() {
            let position =
                i32::try_from(i + 1).map_err(|_| corrupt("diagnosis position", i.to_string()))?;
            with_tx!(tx, |conn| {
                sqlx::query(
                    "INSERT INTO claim_diagnoses (tenant_id, claim_id, position, code) VALUES ($1, $2, $3, $4)",
                )
                .bind(t)
                .bind(&id_text)
                .bind(position)
                .bind(code)
                .execute(&mut *conn)
                .await?
                .rows_affected()
            });
        }

        for (i, (line, charge_cents)) in claim.lines.iter().zip(&line_cents).enumerate() {
            let line_number =
                i32::try_from(i + 1).map_err(|_| corrupt("claim line number", i.to_string()))?;
            let line_control_number = match &line.line_control_number {
                Some(lcn) => lcn.clone(),
                None => ClaimLineId::new().to_string(),
            };
            with_tx!(tx, |conn| {
                sqlx::query(
                    "INSERT INTO claim_lines (tenant_id, claim_id, line_number, line_control_number, \
                     procedure_code, modifiers, revenue_code, charge_cents, units, service_date, diagnosis_pointers) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(t)
                .bind(&id_text)
                .bind(line_number)
                .bind(&line_control_number)
                .bind(&line.procedure_code)
                .bind(line.modifiers.join(","))
                .bind(line.revenue_code.as_deref())
                .bind(*charge_cents)
                .bind(line.units.to_string())
                .bind(format_iso_date(line.service_date))
                .bind(join(&line.diagnosis_pointers))
                .execute(&mut *conn)
                .await?
                .rows_affected()
            });
        }

        record_status_change(
            &mut tx,
            t,
            Transition {
                claim_id: &id_text,
                from: None,
                to: status,
                source: StatusChangeSource::Create,
                source_id: "",
                reason: "created",
                at: now,
            },
        )
        .await?;

        idempotency::complete(&mut tx, pending, id_text.as_bytes()).await?;
        tx.commit().await?;

        let claim = self
            .get_claim(tenant, id)
            .await?
            .ok_or_else(|| corrupt("claim", format!("claim {id} vanished after commit")))?;
        Ok(Created {
            claim,
            replayed: false,
        })
    }

    async fn get_claim(
        &self,
        tenant: &TenantId,
        id: ClaimId,
    ) -> Result<Option<Claim>, ClaimStoreError> {
        let t = tenant.as_str();
        let id_text = id.to_string();
        let (headers, diagnoses, lines) = with_db!(self.db, |pool| {
            let headers: Vec<ClaimRow> = sqlx::query_as(concat!(
                "SELECT ",
                claim_columns!(),
                " FROM claims WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(t)
            .bind(&id_text)
            .fetch_all(pool)
            .await?;
            if headers.is_empty() {
                return Ok(None);
            }
            let diagnoses: Vec<DiagnosisRow> = sqlx::query_as(
                "SELECT claim_id, code FROM claim_diagnoses WHERE tenant_id = $1 AND claim_id = $2 \
                 ORDER BY position",
            )
            .bind(t)
            .bind(&id_text)
            .fetch_all(pool)
            .await?;
            let lines: Vec<LineRow> = sqlx::query_as(concat!(
                "SELECT ",
                line_columns!(),
                " FROM claim_lines WHERE tenant_id = $1 AND claim_id = $2 ORDER BY line_number"
            ))
            .bind(t)
            .bind(&id_text)
            .fetch_all(pool)
            .await?;
            (headers, diagnoses, lines)
        });
        Ok(assemble(headers, diagnoses, lines)?.into_iter().next())
    }

    async fn list_claims(
        &self,
        tenant: &TenantId,
        filter: &ClaimFilter,
        after: Option<ClaimId>,
        limit: u32,
    ) -> Result<Vec<Claim>, ClaimStoreError> {
        let t = tenant.as_str();
        let statuses = (!filter.statuses.is_empty()).then(|| {
            filter
                .statuses
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(",")
        });
        let status = statuses.as_deref();
        let from = filter.service_date_from.map(format_iso_date);
        let to = filter.service_date_to.map(format_iso_date);
        let after = after.map(|a| a.to_string());
        let limit = i64::from(limit);
        // The three queries select the same page because the detail queries repeat the header filter
        // as a subquery; reads of committed rows are stable for a claim's header and lines.
        // Binds the ten parameters of `list_filter!`, the same for each of the three queries.
        macro_rules! bind_filter {
            ($query:expr) => {
                $query
                    .bind(t)
                    .bind(status)
                    .bind(filter.patient_ref.as_deref())
                    .bind(filter.payer_id.as_deref())
                    .bind(from.as_deref())
                    .bind(to.as_deref())
                    .bind(after.as_deref())
                    .bind(limit)
                    .bind(filter.patient_control_number.as_deref())
                    .bind(filter.coverage_id.as_deref())
            };
        }
        let (headers, diagnoses, lines) = with_db!(self.db, |pool| {
            let headers: Vec<ClaimRow> = bind_filter!(sqlx::query_as(concat!(
                "SELECT ",
                claim_columns!(),
                " FROM claims WHERE tenant_id = $1 AND id IN (",
                list_filter!(),
                ") ORDER BY id"
            )))
            .fetch_all(pool)
            .await?;
            if headers.is_empty() {
                return Ok(Vec::new());
            }
            let diagnoses: Vec<DiagnosisRow> = bind_filter!(sqlx::query_as(concat!(
                "SELECT claim_id, code FROM claim_diagnoses WHERE tenant_id = $1 AND claim_id IN (",
                list_filter!(),
                ") ORDER BY claim_id, position"
            )))
            .fetch_all(pool)
            .await?;
            let lines: Vec<LineRow> = bind_filter!(sqlx::query_as(concat!(
                "SELECT ",
                line_columns!(),
                " FROM claim_lines WHERE tenant_id = $1 AND claim_id IN (",
                list_filter!(),
                ") ORDER BY claim_id, line_number"
            )))
            .fetch_all(pool)
            .await?;
            (headers, diagnoses, lines)
        });
        assemble(headers, diagnoses, lines)
    }

    async fn status_history(
        &self,
        tenant: &TenantId,
        id: ClaimId,
    ) -> Result<Vec<StatusChange>, ClaimStoreError> {
        let t = tenant.as_str();
        let id_text = id.to_string();
        let rows: Vec<HistoryRow> = with_db!(self.db, |pool| {
            sqlx::query_as(concat!(
                history_select!(),
                "WHERE h.tenant_id = $1 AND h.claim_id = $2 ORDER BY h.sequence"
            ))
            .bind(t)
            .bind(&id_text)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(change_from_row).collect()
    }

    async fn status_changes_after(
        &self,
        tenant: &TenantId,
        after_sequence: u64,
        limit: u32,
    ) -> Result<Vec<StatusChange>, ClaimStoreError> {
        let t = tenant.as_str();
        // Sequences beyond i64 cannot exist in the database, so clamping finds nothing after them.
        let after = i64::try_from(after_sequence).unwrap_or(i64::MAX);
        let rows: Vec<HistoryRow> = with_db!(self.db, |pool| {
            sqlx::query_as(concat!(
                history_select!(),
                "WHERE h.tenant_id = $1 AND h.sequence > $2 ORDER BY h.sequence LIMIT $3"
            ))
            .bind(t)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(change_from_row).collect()
    }
}
