//! Reading the status history for ListClaimEvents and WatchClaims.

use medbill_domain::{ClaimId, TenantId};
use medbill_storage::with_db;

use super::history::{HistoryRow, change_from_row};
use super::{ClaimStoreError, SqlClaimStore, corrupt};
use crate::model::StatusChange;

/// A status change with the payer of its claim (WatchClaims filters on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedChange {
    /// The change.
    pub change: StatusChange,
    /// The claim's payer identifier.
    pub payer_id: String,
}

#[derive(sqlx::FromRow)]
struct WatchRow {
    #[sqlx(flatten)]
    history: HistoryRow,
    payer_id: String,
}

macro_rules! select {
    () => {
        "SELECT h.id, h.sequence, h.claim_id, c.patient_control_number, h.from_status, \
         h.to_status, h.source, h.source_id, h.reason, h.at, c.payer_id \
         FROM claim_status_history h JOIN claims c ON c.tenant_id = h.tenant_id AND c.id = h.claim_id "
    };
}

fn clamp(sequence: u64) -> i64 {
    // Sequences beyond i64 cannot exist in the database, so clamping finds nothing after them.
    i64::try_from(sequence).unwrap_or(i64::MAX)
}

impl SqlClaimStore {
    /// Reads up to `limit` entries of a claim's history with a sequence after `after`, in order.
    pub(super) async fn claim_events(
        &self,
        tenant: &TenantId,
        claim_id: ClaimId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<StatusChange>, ClaimStoreError> {
        let rows: Vec<WatchRow> = with_db!(self.db, |pool| {
            sqlx::query_as(concat!(
                select!(),
                "WHERE h.tenant_id = $1 AND h.claim_id = $2 AND h.sequence > $3 \
                 ORDER BY h.sequence LIMIT $4"
            ))
            .bind(tenant.as_str())
            .bind(claim_id.to_string())
            .bind(clamp(after))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|r| change_from_row(r.history))
            .collect()
    }

    /// Reads up to `limit` of the tenant's changes with a sequence after `after`, in order, each
    /// with its claim's payer.
    pub(super) async fn watched_changes(
        &self,
        tenant: &TenantId,
        after: u64,
        limit: u32,
    ) -> Result<Vec<WatchedChange>, ClaimStoreError> {
        let rows: Vec<WatchRow> = with_db!(self.db, |pool| {
            sqlx::query_as(concat!(
                select!(),
                "WHERE h.tenant_id = $1 AND h.sequence > $2 ORDER BY h.sequence LIMIT $3"
            ))
            .bind(tenant.as_str())
            .bind(clamp(after))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|r| {
                Ok(WatchedChange {
                    change: change_from_row(r.history)?,
                    payer_id: r.payer_id,
                })
            })
            .collect()
    }

    /// Returns the tenant's last committed status-change sequence (0 when it has none).
    pub(super) async fn last_sequence(&self, tenant: &TenantId) -> Result<u64, ClaimStoreError> {
        let last: Option<i64> = with_db!(self.db, |pool| {
            sqlx::query_scalar(
                "SELECT last_sequence FROM claim_event_sequences WHERE tenant_id = $1",
            )
            .bind(tenant.as_str())
            .fetch_optional(pool)
            .await?
        });
        let last = last.unwrap_or(0);
        u64::try_from(last).map_err(|_| corrupt("claim event sequence", last.to_string()))
    }
}
