//! Submission batches: durable control numbers, the stored 837 with its claims, delivery outcomes,
//! and the claims' moves that go with them.

use medbill_domain::{ClaimId, TenantId};
use medbill_storage::rows::{cents, code, money, timestamp};
use medbill_storage::{Tx, time, with_db, with_tx};
use sha2::{Digest, Sha256};
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::history::{transition, transition_many};
use super::{ClaimStoreError, NewStatus, SqlClaimStore, corrupt};
use crate::model::{ClaimStatus, ClaimType, StatusChangeSource};
use crate::submission::{BatchStatus, NewBatch, SubmissionBatch};

/// Highest interchange control number (ISA13 has 9 digits); the counter wraps to 1 after it.
const MAX_CONTROL_NUMBER: i64 = 999_999_999;

/// Claims per statement when a batch's claims are recorded (two or three bound values each).
const CHUNK: usize = 500;

#[derive(sqlx::FromRow)]
struct BatchRow {
    id: String,
    route: String,
    status: String,
    claim_type: String,
    payer_id: String,
    interchange_control_number: i64,
    group_control_number: i64,
    set_control_number: String,
    total_charge_cents: i64,
    content: Option<Vec<u8>>,
    file_name: String,
    error_message: String,
    created_at: i64,
    sent_at: Option<i64>,
}

fn control(n: i64) -> Result<u32, ClaimStoreError> {
    u32::try_from(n).map_err(|_| corrupt("interchange control number", n.to_string()))
}

impl SqlClaimStore {
    /// Hands out the route's next interchange control number in `tx` (1 after 999999999). The
    /// counter is the route's, shared by the tenants sending through it (see migration 0006).
    pub(super) async fn allocate_control_number(
        &self,
        tx: &mut Tx,
        route: &str,
    ) -> Result<u32, ClaimStoreError> {
        let n: i64 = with_tx!(tx, |conn| {
            sqlx::query_scalar(
                "INSERT INTO submission_control_numbers (route, last_number) VALUES ($1, 1) \
                 ON CONFLICT (route) DO UPDATE SET last_number = \
                 CASE WHEN submission_control_numbers.last_number >= $2 THEN 1 \
                 ELSE submission_control_numbers.last_number + 1 END \
                 RETURNING last_number",
            )
            .bind(route)
            .bind(MAX_CONTROL_NUMBER)
            .fetch_one(&mut *conn)
            .await?
        });
        control(n)
    }

    /// Stores a batch (CREATED) with its claims, and moves each claim READY -> SUBMITTED with the
    /// batch as the cause, all in `tx`.
    pub(super) async fn insert_batch(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        batch: &NewBatch<'_>,
    ) -> Result<SubmissionBatch, ClaimStoreError> {
        let t = tenant.as_str();
        let id = batch.id.to_string();
        let now = time::now_micros();
        let total = cents(batch.total_charge, "batch total charge")?;
        let sha = hex::encode(Sha256::digest(batch.content));
        let count = i32::try_from(batch.claim_ids.len())
            .map_err(|_| corrupt("batch claim count", batch.claim_ids.len().to_string()))?;
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO submission_batches (tenant_id, id, route, status, claim_type, payer_id, \
                 interchange_control_number, group_control_number, set_control_number, claim_count, \
                 total_charge_cents, content, content_sha256, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(t)
            .bind(&id)
            .bind(batch.route)
            .bind(BatchStatus::Created.as_str())
            .bind(batch.claim_type.as_str())
            .bind(batch.payer_id)
            .bind(i64::from(batch.control_number))
            .bind(batch.set_control_number)
            .bind(count)
            .bind(total)
            .bind(batch.content)
            .bind(&sha)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        // A batch holds up to 5,000 claims: its rows go in chunks of statements, and the claims'
        // move (with their batch id) in `transition_many`, not six statements per claim.
        let mut position = 0i32;
        for chunk in batch.claim_ids.chunks(CHUNK) {
            let claims: Vec<String> = chunk.iter().map(ToString::to_string).collect();
            let rows = (0..claims.len())
                .map(|i| format!("($1, $2, ${}, ${})", 3 + 2 * i, 4 + 2 * i))
                .collect::<Vec<_>>()
                .join(", ");
            let insert = format!(
                "INSERT INTO submission_batch_claims (tenant_id, batch_id, position, claim_id) \
                 VALUES {rows}"
            );
            let first = position;
            position += i32::try_from(claims.len())
                .map_err(|_| corrupt("batch position", claims.len().to_string()))?;
            with_tx!(tx, |conn| {
                // Only numbered placeholders are formatted into the text; the values are bound.
                let mut query = sqlx::query(AssertSqlSafe(insert.clone())).bind(t).bind(&id);
                for (i, claim) in claims.iter().enumerate() {
                    let at = first + 1 + i32::try_from(i).unwrap_or(i32::MAX);
                    query = query.bind(at).bind(claim);
                }
                query.execute(&mut *conn).await?.rows_affected()
            });
        }
        let reason = format!("sent in 837 interchange {:09}", batch.control_number);
        transition_many(
            tx,
            tenant,
            batch.claim_ids,
            ClaimStatus::Ready,
            NewStatus {
                to: ClaimStatus::Submitted,
                source: StatusChangeSource::Submission,
                source_id: &id,
                reason: &reason,
            },
            Some(&id),
        )
        .await?;
        Ok(SubmissionBatch {
            id: batch.id,
            route: batch.route.to_owned(),
            status: BatchStatus::Created,
            claim_type: batch.claim_type,
            payer_id: batch.payer_id.to_owned(),
            interchange_control_number: batch.control_number,
            group_control_number: batch.control_number,
            set_control_number: batch.set_control_number.to_owned(),
            claim_ids: batch.claim_ids.to_vec(),
            total_charge: batch.total_charge,
            content: None,
            file_name: String::new(),
            error_message: String::new(),
            created_at: timestamp(now, "batch created_at")?,
            sent_at: None,
            acknowledgement_ids: Vec::new(),
        })
    }

    /// Records a delivered batch (CREATED -> SENT) with the transport's file name.
    pub(super) async fn mark_sent(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        batch_id: Uuid,
        file_name: &str,
    ) -> Result<(), ClaimStoreError> {
        let now = time::now_micros();
        with_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE submission_batches SET status = 'SENT', file_name = $3, sent_at = $4, \
                 error_message = '' WHERE tenant_id = $1 AND id = $2 AND status = 'CREATED'",
            )
            .bind(tenant.as_str())
            .bind(batch_id.to_string())
            .bind(file_name)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Records a failed delivery (CREATED -> FAILED) and puts the batch's claims that are still
    /// SUBMITTED by it back to READY, in `tx`.
    pub(super) async fn mark_failed(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        batch_id: Uuid,
        error: &str,
    ) -> Result<(), ClaimStoreError> {
        let t = tenant.as_str();
        let id = batch_id.to_string();
        let changed = with_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE submission_batches SET status = 'FAILED', error_message = $3 \
                 WHERE tenant_id = $1 AND id = $2 AND status = 'CREATED'",
            )
            .bind(t)
            .bind(&id)
            .bind(error)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        if changed == 0 {
            return Ok(());
        }
        let claims: Vec<String> = with_tx!(tx, |conn| {
            sqlx::query_scalar(
                "SELECT c.id FROM submission_batch_claims b JOIN claims c \
                 ON c.tenant_id = b.tenant_id AND c.id = b.claim_id \
                 WHERE b.tenant_id = $1 AND b.batch_id = $2 AND c.status = 'SUBMITTED' \
                 AND c.submission_batch_id = $2 ORDER BY b.position",
            )
            .bind(t)
            .bind(&id)
            .fetch_all(&mut *conn)
            .await?
        });
        let reason = format!("delivery failed: {error}");
        for claim in claims {
            let claim_id =
                ClaimId::parse(&claim).map_err(|e| corrupt("batch claim id", e.to_string()))?;
            transition(
                tx,
                tenant,
                claim_id,
                NewStatus {
                    to: ClaimStatus::Ready,
                    source: StatusChangeSource::Submission,
                    source_id: &id,
                    reason: &reason,
                },
            )
            .await?;
        }
        Ok(())
    }

    /// Reads one batch, with its raw 837 when `include_content`.
    pub(super) async fn batch(
        &self,
        tenant: &TenantId,
        batch_id: Uuid,
        include_content: bool,
    ) -> Result<Option<SubmissionBatch>, ClaimStoreError> {
        let t = tenant.as_str();
        let id = batch_id.to_string();
        let (row, claims) = with_db!(self.db, |pool| {
            let row: Option<BatchRow> = sqlx::query_as(
                "SELECT id, route, status, claim_type, payer_id, interchange_control_number, \
                 group_control_number, set_control_number, total_charge_cents, \
                 CASE WHEN $3 THEN content ELSE NULL END AS content, file_name, error_message, \
                 created_at, sent_at FROM submission_batches WHERE tenant_id = $1 AND id = $2",
            )
            .bind(t)
            .bind(&id)
            .bind(include_content)
            .fetch_optional(pool)
            .await?;
            let claims: Vec<String> = sqlx::query_scalar(
                "SELECT claim_id FROM submission_batch_claims WHERE tenant_id = $1 AND batch_id = $2 \
                 ORDER BY position",
            )
            .bind(t)
            .bind(&id)
            .fetch_all(pool)
            .await?;
            (row, claims)
        });
        let Some(r) = row else { return Ok(None) };
        Ok(Some(SubmissionBatch {
            id: Uuid::try_parse(&r.id).map_err(|e| corrupt("batch id", e.to_string()))?,
            route: r.route,
            status: code::<BatchStatus>(&r.status, "batch status")?,
            claim_type: code::<ClaimType>(&r.claim_type, "batch claim type")?,
            payer_id: r.payer_id,
            interchange_control_number: control(r.interchange_control_number)?,
            group_control_number: control(r.group_control_number)?,
            set_control_number: r.set_control_number,
            claim_ids: claims
                .iter()
                .map(|c| ClaimId::parse(c).map_err(|e| corrupt("batch claim id", e.to_string())))
                .collect::<Result<_, _>>()?,
            total_charge: money(r.total_charge_cents),
            content: r.content,
            file_name: r.file_name,
            error_message: r.error_message,
            created_at: timestamp(r.created_at, "batch created_at")?,
            sent_at: r
                .sent_at
                .map(|s| timestamp(s, "batch sent_at"))
                .transpose()?,
            acknowledgement_ids: Vec::new(),
        }))
    }

    /// Lists batches of any tenant still CREATED and older than `before` (unix micros): those a
    /// crash left undelivered. Returns (tenant, batch id) pairs, oldest first.
    pub(super) async fn undelivered(
        &self,
        before: i64,
        limit: u32,
    ) -> Result<Vec<(String, Uuid)>, ClaimStoreError> {
        let rows: Vec<(String, String)> = with_db!(self.db, |pool| {
            sqlx::query_as(
                "SELECT tenant_id, id FROM submission_batches WHERE status = 'CREATED' \
                 AND created_at < $1 ORDER BY created_at LIMIT $2",
            )
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(t, id)| {
                Uuid::try_parse(&id)
                    .map(|u| (t, u))
                    .map_err(|e| corrupt("batch id", e.to_string()))
            })
            .collect()
    }

    pub(super) async fn lease_undelivered(
        &self,
        tenant: &str,
        batch_id: Uuid,
        now: i64,
        until: i64,
    ) -> Result<bool, ClaimStoreError> {
        let updated = with_db!(self.db, |pool| {
            sqlx::query(
                "UPDATE submission_batches SET redelivery_lease_until = $1 \
                 WHERE tenant_id = $2 AND id = $3 AND status = 'CREATED' \
                 AND (redelivery_lease_until IS NULL OR redelivery_lease_until < $4)",
            )
            .bind(until)
            .bind(tenant)
            .bind(batch_id.to_string())
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(updated == 1)
    }
}
