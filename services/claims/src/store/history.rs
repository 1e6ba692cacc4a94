//! The status history of claims, and status changes checked against the life cycle.

use medbill_domain::{ClaimId, PatientControlNumber, TenantId};
use medbill_storage::filters::placeholders;
use medbill_storage::rows::{code, timestamp};
use medbill_storage::{DeferredItem, DeferredWrite, StorageError, Tx, time, with_db, with_tx};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::{ClaimStoreError, NewStatus, SqlClaimStore, corrupt, rows_per_statement, tenant_rows};
use crate::lifecycle;
use crate::model::{ClaimStatus, StatusChange, StatusChangeSource, StatusMove};

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

/// One status change to append with [`append_history`].
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

/// What [`append_history`] defers to the commit: one call's status changes of one tenant.
struct PendingHistory {
    tenant: String,
    rows: Vec<PendingRow>,
}

/// An owned [`Transition`] with its id.
struct PendingRow {
    id: Uuid,
    claim_id: String,
    from: Option<ClaimStatus>,
    to: ClaimStatus,
    source: StatusChangeSource,
    source_id: String,
    reason: String,
    at: i64,
}

/// The kind the history rows are deferred under (see [`Tx::defer`]).
const PENDING_HISTORY: &str = "claim_status_history";

/// Appends status changes to the history in the caller's transaction, in order, and returns
/// each one's id. The rows are written when the transaction commits, after everything else
/// (see [`write_history`]): their per-tenant sequence numbers come from a counter row that
/// stays locked until the commit, so taking it last keeps one writer's lock from spanning the
/// rest of its transaction (a group commit's every unit, a batch's every claim).
pub(super) fn append_history(tx: &mut Tx, tenant: &str, changes: &[Transition<'_>]) -> Vec<Uuid> {
    let rows: Vec<PendingRow> = changes
        .iter()
        .map(|t| PendingRow {
            id: Uuid::now_v7(),
            claim_id: t.claim_id.to_owned(),
            from: t.from,
            to: t.to,
            source: t.source,
            source_id: t.source_id.to_owned(),
            reason: t.reason.to_owned(),
            at: t.at,
        })
        .collect();
    let ids = rows.iter().map(|r| r.id).collect();
    if !rows.is_empty() {
        tx.defer(
            PENDING_HISTORY,
            write_history,
            PendingHistory {
                tenant: tenant.to_owned(),
                rows,
            },
        );
    }
    ids
}

/// Rewrites the source and reason of a claim's creating entry appended in this transaction and
/// not yet written; returns whether there was one.
pub(super) fn describe_pending_creation(
    tx: &mut Tx,
    tenant: &str,
    claim_id: &str,
    source: StatusChangeSource,
    source_id: &str,
    reason: &str,
) -> bool {
    let mut found = false;
    for pending in tx.deferred_mut::<PendingHistory>(PENDING_HISTORY) {
        if pending.tenant != tenant {
            continue;
        }
        for row in &mut pending.rows {
            if row.claim_id == claim_id && row.from.is_none() {
                row.source = source;
                row.source_id = source_id.to_owned();
                row.reason = reason.to_owned();
                found = true;
            }
        }
    }
    found
}

/// Writes the status changes deferred in a transaction, just before it commits: per tenant,
/// in the order appended, numbered `last - n + 1 ..= last` from one bump of the tenant's
/// sequence row, which stays locked until the commit, so numbers are gap-free and commit in
/// order; the rows go in multi-row statements.
fn write_history(tx: &mut Tx, items: Vec<DeferredItem>) -> DeferredWrite<'_> {
    Box::pin(async move {
        let mut tenants: Vec<(String, Vec<PendingRow>)> = Vec::new();
        for item in items {
            let pending = item
                .downcast::<PendingHistory>()
                .map_err(|_| StorageError::corrupt("deferred status history", "another kind"))?;
            let PendingHistory { tenant, rows } = *pending;
            match tenants.iter_mut().find(|(t, _)| *t == tenant) {
                Some((_, all)) => all.extend(rows),
                None => tenants.push((tenant, rows)),
            }
        }
        for (tenant, rows) in tenants {
            number_and_insert(tx, &tenant, &rows).await?;
        }
        Ok(())
    })
}

async fn number_and_insert(
    tx: &mut Tx,
    tenant: &str,
    rows: &[PendingRow],
) -> Result<(), StorageError> {
    let n = i64::try_from(rows.len())
        .map_err(|_| StorageError::corrupt("status changes at once", rows.len().to_string()))?;
    let last: i64 = with_tx!(tx, |conn| {
        sqlx::query_scalar(
            "INSERT INTO claim_event_sequences (tenant_id, last_sequence) VALUES ($1, $2) \
             ON CONFLICT (tenant_id) DO UPDATE SET last_sequence = claim_event_sequences.last_sequence + $2 \
             RETURNING last_sequence",
        )
        .bind(tenant)
        .bind(n)
        .fetch_one(&mut *conn)
        .await?
    });
    let mut sequence = last - n;
    for chunk in rows.chunks(rows_per_statement(9)) {
        // $1 tenant; nine values per row.
        let values = tenant_rows(chunk.len(), 9);
        let sql = format!(
            "INSERT INTO claim_status_history (tenant_id, id, sequence, claim_id, from_status, \
             to_status, source, source_id, reason, at) VALUES {values}"
        );
        with_tx!(tx, |conn| {
            // Only numbered placeholders are formatted into the text; the values are bound.
            let mut query = sqlx::query(AssertSqlSafe(sql.clone())).bind(tenant);
            for r in chunk {
                sequence += 1;
                query = query
                    .bind(r.id.to_string())
                    .bind(sequence)
                    .bind(&r.claim_id)
                    .bind(r.from.map(ClaimStatus::as_str))
                    .bind(r.to.as_str())
                    .bind(r.source.as_str())
                    .bind(&r.source_id)
                    .bind(&r.reason)
                    .bind(r.at);
            }
            query.execute(&mut *conn).await?.rows_affected()
        });
    }
    Ok(())
}

/// Moves a claim to `to` if the life cycle allows it from the status it has now: one
/// conditional update (it still has the status read) and the history entry, in `tx`.
pub(super) async fn transition(
    tx: &mut Tx,
    tenant: &TenantId,
    claim_id: ClaimId,
    change: NewStatus<'_>,
) -> Result<StatusMove, ClaimStoreError> {
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
    let ids = append_history(
        tx,
        t,
        &[Transition {
            claim_id: &id_text,
            from: Some(from),
            to,
            source,
            source_id,
            reason,
            at: now,
        }],
    );
    Ok(StatusMove {
        history_id: ids
            .first()
            .copied()
            .ok_or_else(|| corrupt("status history", "no entry appended"))?,
        claim_id,
        patient_control_number: PatientControlNumber::parse(&pcn)
            .map_err(|e| corrupt("patient control number", e.to_string()))?,
        from,
        to,
        at: timestamp(now, "status history at")?,
    })
}

/// Claims moved per statement by [`transition_many`] (their ids in one IN list).
const MANY_CHUNK: usize = 500;

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
    let now = time::now_micros();
    update_status(tx, tenant, claim_ids, from, to, now, batch_id).await?;
    let ids: Vec<String> = claim_ids.iter().map(ToString::to_string).collect();
    let changes: Vec<Transition<'_>> = ids
        .iter()
        .map(|id| Transition {
            claim_id: id,
            from: Some(from),
            to,
            source,
            source_id,
            reason,
            at: now,
        })
        .collect();
    append_history(tx, tenant.as_str(), &changes);
    Ok(())
}

/// One claim's move for [`move_claims`].
#[derive(Debug, Clone, Copy)]
pub struct ClaimMove<'a> {
    /// The claim.
    pub claim_id: ClaimId,
    /// The status it was read in.
    pub from: ClaimStatus,
    /// Where it goes, why and from what.
    pub change: NewStatus<'a>,
}

/// Moves each claim of `moves` (distinct) from its `from` to its own new status in `tx`: the
/// life cycle checked per move, one conditional update per (from, to) group and chunk, and the
/// history rows in `moves` order from one bump of the tenant's counter. Fails as
/// [`transition_many`] does when a claim is no longer in its `from`, leaving the caller to roll
/// back. Returns when the claims moved, in unix micros.
pub(super) async fn move_claims(
    tx: &mut Tx,
    tenant: &TenantId,
    moves: &[ClaimMove<'_>],
) -> Result<i64, ClaimStoreError> {
    let now = time::now_micros();
    let mut groups: Vec<((ClaimStatus, ClaimStatus), Vec<ClaimId>)> = Vec::new();
    for m in moves {
        lifecycle::check(m.from, m.change.to)?;
        let key = (m.from, m.change.to);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, ids)) => ids.push(m.claim_id),
            None => groups.push((key, vec![m.claim_id])),
        }
    }
    for ((from, to), ids) in &groups {
        update_status(tx, tenant, ids, *from, *to, now, None).await?;
    }
    let ids: Vec<String> = moves.iter().map(|m| m.claim_id.to_string()).collect();
    let changes: Vec<Transition<'_>> = moves
        .iter()
        .zip(&ids)
        .map(|(m, id)| Transition {
            claim_id: id,
            from: Some(m.from),
            to: m.change.to,
            source: m.change.source,
            source_id: m.change.source_id,
            reason: m.change.reason,
            at: now,
        })
        .collect();
    append_history(tx, tenant.as_str(), &changes);
    Ok(now)
}

/// Sets `to` (and the submission batch when given) on every claim of `claim_ids` that is still in
/// `from`, [`MANY_CHUNK`] claims per statement; fails naming the first claim that was not.
async fn update_status(
    tx: &mut Tx,
    tenant: &TenantId,
    claim_ids: &[ClaimId],
    from: ClaimStatus,
    to: ClaimStatus,
    now: i64,
    batch_id: Option<&str>,
) -> Result<(), ClaimStoreError> {
    let t = tenant.as_str();
    for chunk in claim_ids.chunks(MANY_CHUNK) {
        let ids: Vec<String> = chunk.iter().map(ToString::to_string).collect();
        // `tenant_id || ''` and `status || ''` leave the id list as the only indexed condition:
        // otherwise SQLite (always) and PostgreSQL (with old statistics) walked the tenant's
        // claims through an index on `tenant_id` for each chunk.
        let sql = format!(
            "UPDATE claims SET status = $1, updated_at = $2, \
             submission_batch_id = COALESCE($5, submission_batch_id) \
             WHERE tenant_id || '' = $3 AND status || '' = $4 AND id IN ({})",
            placeholders(6, ids.len())
        );
        let updated = with_tx!(tx, |conn| {
            // Only numbered placeholders are formatted into the text; the ids are bound.
            let mut query = sqlx::query(AssertSqlSafe(sql.clone()))
                .persistent(false)
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
