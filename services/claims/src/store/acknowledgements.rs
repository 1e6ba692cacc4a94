//! Acknowledgement files (TA1, 999, 277CA): stored once by content, found again by it, and the
//! batch and claim changes they cause.

use medbill_domain::{ClaimId, TenantId};
use medbill_storage::{Tx, time, with_db, with_tx};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::{ClaimStoreError, SqlClaimStore, corrupt};
use crate::acknowledgements::NewAcknowledgement;
use crate::submission::BatchStatus;

/// Claims per statement in [`SqlClaimStore::set_payer_claim_numbers`] (three bound values each).
const NUMBERS_CHUNK: usize = 500;

impl SqlClaimStore {
    /// The stored result of an acknowledgement with this content hash, if the tenant has one.
    pub(super) async fn acknowledgement_by_hash(
        &self,
        tenant: &TenantId,
        sha256: &str,
    ) -> Result<Option<Vec<u8>>, ClaimStoreError> {
        Ok(with_db!(self.db, |pool| {
            sqlx::query_scalar(
                "SELECT result FROM acknowledgements WHERE tenant_id = $1 AND content_sha256 = $2",
            )
            .bind(tenant.as_str())
            .bind(sha256)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Stores an acknowledgement in `tx`; false when the same content was stored meanwhile.
    pub(super) async fn insert_acknowledgement(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        ack: &NewAcknowledgement<'_>,
    ) -> Result<bool, ClaimStoreError> {
        let inserted = with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO acknowledgements (tenant_id, id, kind, batch_id, interchange_control_number, \
                 content, content_sha256, file_name, source, result, received_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
                 ON CONFLICT (tenant_id, content_sha256) DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(ack.id.to_string())
            .bind(ack.kind)
            .bind(ack.batch_id.map(|b| b.to_string()))
            .bind(ack.interchange_control_number)
            .bind(ack.content)
            .bind(ack.sha256)
            .bind(ack.file_name)
            .bind(ack.source)
            .bind(ack.result)
            .bind(time::now_micros())
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(inserted == 1)
    }

    /// The batch of a tenant whose interchange control number (ISA13 = GS06) is `control`,
    /// preferring the route `route` when given (control numbers are per route).
    pub(super) async fn batch_by_control(
        &self,
        tenant: &TenantId,
        control: u32,
        route: Option<&str>,
    ) -> Result<Option<Uuid>, ClaimStoreError> {
        let rows: Vec<(String, String)> = with_db!(self.db, |pool| {
            sqlx::query_as(
                "SELECT id, route FROM submission_batches WHERE tenant_id = $1 \
                 AND interchange_control_number = $2 ORDER BY created_at DESC",
            )
            .bind(tenant.as_str())
            .bind(i64::from(control))
            .fetch_all(pool)
            .await?
        });
        let pick = rows
            .iter()
            .find(|(_, r)| Some(r.as_str()) == route)
            .or_else(|| rows.first());
        pick.map(|(id, _)| Uuid::try_parse(id).map_err(|e| corrupt("batch id", e.to_string())))
            .transpose()
    }

    /// Sets a batch's status from an acknowledgement, in `tx`.
    pub(super) async fn update_batch_status(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        batch_id: Uuid,
        status: BatchStatus,
    ) -> Result<(), ClaimStoreError> {
        with_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE submission_batches SET status = $3 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_str())
            .bind(batch_id.to_string())
            .bind(status.as_str())
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Records the payer's claim control numbers, one UPDATE per [`NUMBERS_CHUNK`] claims (a
    /// CASE over the claim ids).
    pub(super) async fn set_payer_claim_numbers(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        numbers: &[(ClaimId, &str)],
    ) -> Result<(), ClaimStoreError> {
        for chunk in numbers.chunks(NUMBERS_CHUNK) {
            // $1 tenant; each claim binds its id and number for the CASE, then its id again.
            let cases: String = (0..chunk.len())
                .map(|i| format!(" WHEN ${} THEN ${}", 2 + 2 * i, 3 + 2 * i))
                .collect();
            let first_id = 2 + 2 * chunk.len();
            let ids = medbill_storage::filters::placeholders(first_id, chunk.len());
            // Only numbered placeholders are formatted into the text; the values are bound.
            // `tenant_id || ''`: the claims by their ids alone (see `history::update_status`).
            let sql = format!(
                "UPDATE claims SET payer_claim_control_number = CASE id{cases} END \
                 WHERE tenant_id || '' = $1 AND id IN ({ids})"
            );
            let ids: Vec<String> = chunk.iter().map(|(id, _)| id.to_string()).collect();
            with_tx!(tx, |conn| {
                let mut query = sqlx::query(AssertSqlSafe(sql.clone()))
                    .persistent(false)
                    .bind(tenant.as_str());
                for ((_, number), id) in chunk.iter().zip(&ids) {
                    query = query.bind(id).bind(*number);
                }
                for id in &ids {
                    query = query.bind(id);
                }
                query.execute(&mut *conn).await?.rows_affected()
            });
        }
        Ok(())
    }

    /// Ids of the acknowledgements received for a batch, oldest first.
    pub(super) async fn batch_acknowledgements(
        &self,
        tenant: &TenantId,
        batch_id: Uuid,
    ) -> Result<Vec<Uuid>, ClaimStoreError> {
        let ids: Vec<String> = with_db!(self.db, |pool| {
            sqlx::query_scalar(
                "SELECT id FROM acknowledgements WHERE tenant_id = $1 AND batch_id = $2 ORDER BY received_at, id",
            )
            .bind(tenant.as_str())
            .bind(batch_id.to_string())
            .fetch_all(pool)
            .await?
        });
        ids.iter()
            .map(|i| Uuid::try_parse(i).map_err(|e| corrupt("acknowledgement id", e.to_string())))
            .collect()
    }
}

impl SqlClaimStore {
    /// The tenant of the batch sent through `route` with interchange control number `control`
    /// (control numbers are the route's, so at most one batch has it).
    pub(super) async fn owner_by_control(
        &self,
        route: &str,
        control: u32,
    ) -> Result<Option<String>, ClaimStoreError> {
        Ok(with_db!(self.db, |pool| {
            sqlx::query_scalar(
                "SELECT tenant_id FROM submission_batches WHERE route = $1 \
                 AND interchange_control_number = $2",
            )
            .bind(route)
            .bind(i64::from(control))
            .fetch_optional(pool)
            .await?
        }))
    }

    /// The tenant of the batch with this id (batch ids are UUIDs, unique across tenants).
    pub(super) async fn owner_by_batch_id(
        &self,
        batch_id: Uuid,
    ) -> Result<Option<String>, ClaimStoreError> {
        Ok(with_db!(self.db, |pool| {
            sqlx::query_scalar("SELECT tenant_id FROM submission_batches WHERE id = $1")
                .bind(batch_id.to_string())
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Keeps a picked-up file that could not be read or attributed; false when already kept.
    pub(super) async fn keep_unassigned(
        &self,
        route: &str,
        file_id: &str,
        content: &[u8],
        reason: &str,
    ) -> Result<bool, ClaimStoreError> {
        let n = with_db!(self.db, |pool| {
            sqlx::query(
                "INSERT INTO unassigned_inbound_files (route, file_id, content, reason, received_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (route, file_id) DO NOTHING",
            )
            .bind(route)
            .bind(file_id)
            .bind(content)
            .bind(reason)
            .bind(time::now_micros())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }
}
