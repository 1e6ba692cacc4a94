//! The chain of corrected and voided claims: original -> replacement (frequency 7) or void claim
//! (frequency 8), stored on both claims.

use chrono::{DateTime, Utc};
use medbill_domain::{ClaimId, TenantId};
use medbill_storage::rows::timestamp;
use medbill_storage::{Tx, time, with_tx};
use sqlx::AssertSqlSafe;

use super::{ClaimStoreError, rows_per_statement};
use crate::model::StatusChangeSource;

/// Links `original` to the claim that supersedes it, both ways, in `tx`, and returns the original's
/// new `updated_at`. FAILED_PRECONDITION (`AlreadySuperseded`) when the original was superseded
/// already (a concurrent correction).
pub(super) async fn link(
    tx: &mut Tx,
    tenant: &TenantId,
    original: ClaimId,
    successor: ClaimId,
) -> Result<DateTime<Utc>, ClaimStoreError> {
    let t = tenant.as_str();
    let now = time::now_micros();
    let (orig, succ) = (original.to_string(), successor.to_string());
    let updated = with_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE claims SET superseded_by_claim_id = $1, updated_at = $2 \
             WHERE tenant_id = $3 AND id = $4 AND superseded_by_claim_id IS NULL",
        )
        .bind(&succ)
        .bind(now)
        .bind(t)
        .bind(&orig)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if updated != 1 {
        return Err(ClaimStoreError::AlreadySuperseded(original));
    }
    let updated = with_tx!(tx, |conn| {
        sqlx::query("UPDATE claims SET original_claim_id = $1 WHERE tenant_id = $2 AND id = $3")
            .bind(&orig)
            .bind(t)
            .bind(&succ)
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    if updated != 1 {
        return Err(ClaimStoreError::NotFound(successor));
    }
    Ok(timestamp(now, "claim updated_at")?)
}

/// Rewrites the creating history entry of a claim made by a correction or a void, so its
/// history says what made it and from which claim (CreateClaim's entry says "created").
pub(super) async fn describe_creation(
    tx: &mut Tx,
    tenant: &TenantId,
    claim_id: ClaimId,
    source: StatusChangeSource,
    source_id: &str,
    reason: &str,
) -> Result<(), ClaimStoreError> {
    // A claim created in this transaction: its entry is not written until the commit.
    let id_text = claim_id.to_string();
    if super::history::describe_pending_creation(
        tx,
        tenant.as_str(),
        &id_text,
        source,
        source_id,
        reason,
    ) {
        return Ok(());
    }
    with_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE claim_status_history SET source = $1, source_id = $2, reason = $3 \
             WHERE tenant_id = $4 AND claim_id = $5 AND from_status IS NULL",
        )
        .bind(source.as_str())
        .bind(source_id)
        .bind(reason)
        .bind(tenant.as_str())
        .bind(claim_id.to_string())
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(())
}

/// Reports whether the tenant has a claim with this patient control number, read in `tx`.
pub(super) async fn patient_control_number_taken(
    tx: &mut Tx,
    tenant: &TenantId,
    pcn: &str,
) -> Result<bool, ClaimStoreError> {
    let found: Option<String> = with_tx!(tx, |conn| {
        sqlx::query_scalar(
            "SELECT id FROM claims WHERE tenant_id = $1 AND patient_control_number = $2",
        )
        .bind(tenant.as_str())
        .bind(pcn)
        .fetch_optional(&mut *conn)
        .await?
    });
    Ok(found.is_some())
}

/// Links a primary claim to the secondary claim made from its adjudication, both ways, in `tx`,
/// and clears the primary's note. ABORTED when the primary got a secondary since the caller read
/// it; the unique index on `primary_claim_id` backs that up.
pub(super) async fn link_secondary(
    tx: &mut Tx,
    tenant: &TenantId,
    primary: ClaimId,
    secondary: ClaimId,
) -> Result<(), ClaimStoreError> {
    let t = tenant.as_str();
    let (prim, sec) = (primary.to_string(), secondary.to_string());
    let updated = with_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE claims SET secondary_claim_id = $1, secondary_claim_note = NULL \
             WHERE tenant_id = $2 AND id = $3 AND secondary_claim_id IS NULL",
        )
        .bind(&sec)
        .bind(t)
        .bind(&prim)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if updated != 1 {
        return Err(ClaimStoreError::ChangedConcurrently {
            claim_id: primary,
            expected: "without a secondary claim",
        });
    }
    let updated = with_tx!(tx, |conn| {
        sqlx::query("UPDATE claims SET primary_claim_id = $1 WHERE tenant_id = $2 AND id = $3")
            .bind(&prim)
            .bind(t)
            .bind(&sec)
            .execute(&mut *conn)
            .await?
            .rows_affected()
    });
    if updated != 1 {
        return Err(ClaimStoreError::NotFound(secondary));
    }
    Ok(())
}

/// Records on a claim why no secondary claim was made from its adjudication, in `tx`.
pub(super) async fn note_no_secondary(
    tx: &mut Tx,
    tenant: &TenantId,
    claim_id: ClaimId,
    note: &str,
) -> Result<(), ClaimStoreError> {
    note_no_secondary_many(tx, tenant, &[claim_id], note).await
}

/// What [`note_no_secondary`] does, for distinct claims given the same note: one UPDATE per
/// [`rows_per_statement`] claims; NOT_FOUND naming the first claim of one that missed a claim.
pub(super) async fn note_no_secondary_many(
    tx: &mut Tx,
    tenant: &TenantId,
    claim_ids: &[ClaimId],
    note: &str,
) -> Result<(), ClaimStoreError> {
    for chunk in claim_ids.chunks(rows_per_statement(1)) {
        let sql = format!(
            // `tenant_id || ''`: the claims by their ids alone (see `history::update_status`).
            "UPDATE claims SET secondary_claim_note = $1 WHERE tenant_id || '' = $2 AND id IN ({})",
            medbill_storage::filters::placeholders(3, chunk.len())
        );
        let ids: Vec<String> = chunk.iter().map(ToString::to_string).collect();
        let updated = with_tx!(tx, |conn| {
            // Only numbered placeholders are formatted into the text; the ids are bound.
            let mut query = sqlx::query(AssertSqlSafe(sql.clone()))
                .persistent(false)
                .bind(note)
                .bind(tenant.as_str());
            for id in &ids {
                query = query.bind(id);
            }
            query.execute(&mut *conn).await?.rows_affected()
        });
        if updated != chunk.len() as u64 {
            return Err(ClaimStoreError::NotFound(chunk[0]));
        }
    }
    Ok(())
}
