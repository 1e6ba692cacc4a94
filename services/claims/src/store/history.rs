//! The status history of claims, and status changes checked against the life cycle.

use medbill_domain::{ClaimId, PatientControlNumber, TenantId};
use medbill_storage::rows::{code, timestamp};
use medbill_storage::{Tx, time, with_db, with_tx};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::{ClaimStoreError, NewStatus, SqlClaimStore, corrupt};
use crate::lifecycle;
use crate::model::{ClaimStatus, StatusChange, StatusChangeSource};

#[derive(sqlx::FromRow)]
pub(super) struct HistoryRow {
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

pub(super) fn change_from_row(r: HistoryRow) -> Result<StatusChange, ClaimStoreError> {
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

/// One status change to append with [`record_change`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Transition<'a> {
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

/// Appends a status change to the history in the caller's transaction and returns its id and per-tenant
/// sequence number. The tenant's sequence row stays locked until the transaction ends, so numbers are
/// gap-free and commit in order.
pub(super) async fn record_change(
    tx: &mut Tx,
    tenant: &str,
    t: Transition<'_>,
) -> Result<(Uuid, u64), ClaimStoreError> {
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
    let uuid = Uuid::now_v7();
    let id = uuid.to_string();
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
    let sequence = u64::try_from(sequence)
        .map_err(|_| corrupt("claim event sequence", sequence.to_string()))?;
    Ok((uuid, sequence))
}

/// Moves a claim to `to` if the life cycle allows it from the status it has now: one
/// conditional update (it still has the status read) and the history entry, in `tx`.
pub(super) async fn transition(
    tx: &mut Tx,
    tenant: &TenantId,
    claim_id: ClaimId,
    change: NewStatus<'_>,
) -> Result<StatusChange, ClaimStoreError> {
    let NewStatus {
        to,
        source,
        source_id,
        reason,
    } = change;
    let t = tenant.as_str();
    let id_text = claim_id.to_string();
    let current: Option<(String, String)> = with_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT status, patient_control_number FROM claims WHERE tenant_id = $1 AND id = $2",
        )
        .bind(t)
        .bind(&id_text)
        .fetch_optional(&mut *conn)
        .await?
    });
    let (status, pcn) = current.ok_or(ClaimStoreError::NotFound(claim_id))?;
    let from = code::<ClaimStatus>(&status, "claim status")?;
    lifecycle::check(from, to)?;
    let now = time::now_micros();
    let updated = with_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE claims SET status = $1, updated_at = $2 \
             WHERE tenant_id = $3 AND id = $4 AND status = $5",
        )
        .bind(to.as_str())
        .bind(now)
        .bind(t)
        .bind(&id_text)
        .bind(from.as_str())
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if updated != 1 {
        return Err(ClaimStoreError::ChangedConcurrently {
            claim_id,
            expected: from.as_str(),
        });
    }
    let (id, sequence) = record_change(
        tx,
        t,
        Transition {
            claim_id: &id_text,
            from: Some(from),
            to,
            source,
            source_id,
            reason,
            at: now,
        },
    )
    .await?;
    Ok(StatusChange {
        id,
        sequence,
        claim_id,
        patient_control_number: PatientControlNumber::parse(&pcn)
            .map_err(|e| corrupt("patient control number", e.to_string()))?,
        from: Some(from),
        to,
        source,
        source_id: source_id.to_owned(),
        reason: reason.to_owned(),
        at: timestamp(now, "status history at")?,
    })
}

/// Claims moved per statement by [`transition_many`] (10 bound values per history row keep a
/// statement far below both backends' parameter limits).
const MANY_CHUNK: usize = 500;

/// Numbered placeholders `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Moves every claim in `claim_ids` (distinct) from `from` to `change.to` in `tx`: what
/// [`transition`] does for one claim, in a few statements per [`MANY_CHUNK`] claims instead of
/// four per claim (SubmitClaims moves up to 5,000 claims READY -> SUBMITTED at once), and
/// records `batch_id` as the claims' submission batch in the same update when given.
///
/// The life cycle is checked once; each chunk is one conditional update, and if a claim is no
/// longer in `from` the call fails as [`transition`] would for it (FAILED_PRECONDITION naming
/// both statuses, or ABORTED), leaving the caller to roll back. The history entries take the
/// sequence numbers `last - n + 1 ..= last` from one bump of the tenant's counter, in
/// `claim_ids` order, so numbers stay gap-free and commit in order.
pub(super) async fn transition_many(
    tx: &mut Tx,
    tenant: &TenantId,
    claim_ids: &[ClaimId],
    from: ClaimStatus,
    change: NewStatus<'_>,
    batch_id: Option<&str>,
) -> Result<(), ClaimStoreError> {
    let NewStatus {
        to,
        source,
        source_id,
        reason,
    } = change;
    if claim_ids.is_empty() {
        return Ok(());
    }
    lifecycle::check(from, to)?;
    let t = tenant.as_str();
    let now = time::now_micros();
    for chunk in claim_ids.chunks(MANY_CHUNK) {
        let ids: Vec<String> = chunk.iter().map(ToString::to_string).collect();
        // `status || ''` keeps PostgreSQL on the primary key: without statistics it would
        // otherwise walk the (tenant, status) index, every claim in `from`, for each chunk.
        let sql = format!(
            "UPDATE claims SET status = $1, updated_at = $2, \
             submission_batch_id = COALESCE($5, submission_batch_id) \
             WHERE tenant_id = $3 AND status || '' = $4 AND id IN ({})",
            placeholders(6, ids.len())
        );
        let updated = with_tx!(tx, |conn| {
            // Only numbered placeholders are formatted into the text; the ids are bound.
            let mut query = sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(to.as_str())
                .bind(now)
                .bind(t)
                .bind(from.as_str())
                .bind(batch_id);
            for id in &ids {
                query = query.bind(id);
            }
            query.execute(&mut *conn).await?.rows_affected()
        });
        if updated != ids.len() as u64 {
            return Err(moved_elsewhere(tx, tenant, chunk, from, to).await);
        }
    }
    let n = i64::try_from(claim_ids.len())
        .map_err(|_| corrupt("claims moved at once", claim_ids.len().to_string()))?;
    let last: i64 = with_tx!(tx, |conn| {
        sqlx::query_scalar(
            "INSERT INTO claim_event_sequences (tenant_id, last_sequence) VALUES ($1, $2) \
             ON CONFLICT (tenant_id) DO UPDATE SET last_sequence = claim_event_sequences.last_sequence + $2 \
             RETURNING last_sequence",
        )
        .bind(t)
        .bind(n)
        .fetch_one(&mut *conn)
        .await?
    });
    let mut sequence = last - n;
    for chunk in claim_ids.chunks(MANY_CHUNK) {
        // Ten values per row: $1 tenant, $2 from, $3 to, $4 source, $5 source id, $6 reason,
        // $7 at are shared; each row binds its id, sequence and claim id.
        let rows = (0..chunk.len())
            .map(|i| {
                let b = 8 + 3 * i;
                format!("($1, ${b}, ${}, ${}, $2, $3, $4, $5, $6, $7)", b + 1, b + 2)
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO claim_status_history (tenant_id, id, sequence, claim_id, from_status, \
             to_status, source, source_id, reason, at) VALUES {rows}"
        );
        let mut values = Vec::with_capacity(chunk.len());
        for claim_id in chunk {
            sequence += 1;
            values.push((Uuid::now_v7().to_string(), sequence, claim_id.to_string()));
        }
        with_tx!(tx, |conn| {
            let mut query = sqlx::query(AssertSqlSafe(sql.clone()))
                .bind(t)
                .bind(from.as_str())
                .bind(to.as_str())
                .bind(source.as_str())
                .bind(source_id)
                .bind(reason)
                .bind(now);
            for (id, sequence, claim) in &values {
                query = query.bind(id).bind(*sequence).bind(claim);
            }
            query.execute(&mut *conn).await?.rows_affected()
        });
    }
    Ok(())
}

/// Explains why a chunk of [`transition_many`] did not move every claim: the first claim not in
/// `from` is missing, in a status the life cycle does not let move to `to`, or changed
/// concurrently.
async fn moved_elsewhere(
    tx: &mut Tx,
    tenant: &TenantId,
    chunk: &[ClaimId],
    from: ClaimStatus,
    to: ClaimStatus,
) -> ClaimStoreError {
    for claim_id in chunk {
        let id = claim_id.to_string();
        let status: Result<Option<String>, ClaimStoreError> = async {
            Ok(with_tx!(tx, |conn| {
                sqlx::query_scalar("SELECT status FROM claims WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant.as_str())
                    .bind(&id)
                    .fetch_optional(&mut *conn)
                    .await?
            }))
        }
        .await;
        let status = match status {
            Ok(Some(s)) => s,
            Ok(None) => return ClaimStoreError::NotFound(*claim_id),
            Err(e) => return e,
        };
        let now = match code::<ClaimStatus>(&status, "claim status") {
            Ok(s) => s,
            Err(e) => return e.into(),
        };
        // Updated by this call: still counted as moved.
        if now == to || now == from {
            continue;
        }
        if let Err(e) = lifecycle::check(now, to) {
            return e.into();
        }
        return ClaimStoreError::ChangedConcurrently {
            claim_id: *claim_id,
            expected: from.as_str(),
        };
    }
    ClaimStoreError::ChangedConcurrently {
        claim_id: chunk[0],
        expected: from.as_str(),
    }
}

impl SqlClaimStore {
    /// Reads a claim's status history, oldest first.
    pub(super) async fn history(
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

    /// Reads the tenant's status changes after a sequence number, in order.
    pub(super) async fn changes_after(
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
