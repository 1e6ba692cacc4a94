//! Follow-ups of unpaid claims: the 276 asked and the 277 answered, which claims are due, and the
//! lease a follow-up pass holds on a claim while its 276 is out.

use medbill_domain::{ClaimId, TenantId};
use medbill_storage::rows::{code, date, money, timestamp};
use medbill_storage::{Database, Tx, with_db, with_tx};
use uuid::Uuid;

use super::{ClaimStoreError, corrupt};
use crate::follow_up::{FollowUp, FollowUpOutcome, FollowUpStatusCode, FollowUpTrigger};

#[derive(sqlx::FromRow)]
struct FollowUpRow {
    id: String,
    claim_id: String,
    asked_at: i64,
    trigger_kind: String,
    outcome: String,
    statuses_json: String,
    summary: String,
    payer_claim_control_number: Option<String>,
    effective_date: Option<String>,
    paid_cents: Option<i64>,
    error_message: String,
}

fn from_row(r: FollowUpRow) -> Result<FollowUp, ClaimStoreError> {
    let statuses: Vec<FollowUpStatusCode> = serde_json::from_str(&r.statuses_json)
        .map_err(|e| corrupt("follow-up statuses", e.to_string()))?;
    Ok(FollowUp {
        id: Uuid::try_parse(&r.id).map_err(|e| corrupt("follow-up id", e.to_string()))?,
        claim_id: ClaimId::parse(&r.claim_id)
            .map_err(|e| corrupt("follow-up claim id", e.to_string()))?,
        asked_at: timestamp(r.asked_at, "follow-up asked_at")?,
        trigger: code::<FollowUpTrigger>(&r.trigger_kind, "follow-up trigger")?,
        outcome: code::<FollowUpOutcome>(&r.outcome, "follow-up outcome")?,
        statuses,
        summary: r.summary,
        payer_claim_control_number: r.payer_claim_control_number,
        effective_date: r
            .effective_date
            .as_deref()
            .map(|d| date(d, "follow-up effective date"))
            .transpose()?,
        paid: r.paid_cents.map(money),
        error_message: r.error_message,
    })
}

/// Stores a follow-up in `tx`. An answered one also becomes the claim's last follow-up (the next
/// scheduled one waits a full interval from it) and gives an original claim the payer's claim
/// control number when it had none.
pub(super) async fn insert(
    tx: &mut Tx,
    tenant: &TenantId,
    f: &FollowUp,
    raw_request: &[u8],
    raw_response: &[u8],
) -> Result<(), ClaimStoreError> {
    let t = tenant.as_str();
    let statuses = serde_json::to_string(&f.statuses)
        .map_err(|e| corrupt("follow-up statuses", e.to_string()))?;
    let asked_at = f.asked_at.timestamp_micros();
    let paid = f
        .paid
        .map(|m| m.to_minor_units())
        .transpose()
        .map_err(|e| corrupt("follow-up paid amount", e.to_string()))?;
    let claim = f.claim_id.to_string();
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO claim_follow_ups (tenant_id, id, claim_id, asked_at, trigger_kind, \
             outcome, statuses_json, summary, payer_claim_control_number, effective_date, \
             paid_cents, error_message, raw_request, raw_response) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(t)
        .bind(f.id.to_string())
        .bind(&claim)
        .bind(asked_at)
        .bind(f.trigger.as_str())
        .bind(f.outcome.as_str())
        .bind(&statuses)
        .bind(&f.summary)
        .bind(f.payer_claim_control_number.as_deref())
        .bind(f.effective_date.map(medbill_domain::format_iso_date))
        .bind(paid)
        .bind(&f.error_message)
        .bind(raw_request)
        .bind(raw_response)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if f.outcome == FollowUpOutcome::Answered {
        let updated = with_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE claims SET last_follow_up_at = $1, follow_up_lease_until = NULL, \
                 payer_claim_control_number = CASE WHEN frequency_code = '1' \
                 AND payer_claim_control_number IS NULL THEN $2 \
                 ELSE payer_claim_control_number END \
                 WHERE tenant_id = $3 AND id = $4",
            )
            .bind(asked_at)
            .bind(f.payer_claim_control_number.as_deref())
            .bind(t)
            .bind(&claim)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        if updated != 1 {
            return Err(ClaimStoreError::NotFound(f.claim_id));
        }
    }
    Ok(())
}

/// Returns up to `limit` follow-ups of a claim with ids after `after`, oldest first.
pub(super) async fn list(
    db: &Database,
    tenant: &TenantId,
    claim_id: ClaimId,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<FollowUp>, ClaimStoreError> {
    let after = after.map(|u| u.to_string());
    let rows: Vec<FollowUpRow> = with_db!(db, |pool| {
        sqlx::query_as(
            "SELECT id, claim_id, asked_at, trigger_kind, outcome, statuses_json, summary, \
             payer_claim_control_number, effective_date, paid_cents, error_message \
             FROM claim_follow_ups WHERE tenant_id = $1 AND claim_id = $2 \
             AND ($3 IS NULL OR id > $3) ORDER BY id LIMIT $4",
        )
        .bind(tenant.as_str())
        .bind(claim_id.to_string())
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    rows.into_iter().map(from_row).collect()
}

/// Returns (tenant, claim id) of up to `limit` claims of any tenant with `payer_id` that are
/// SUBMITTED or ACCEPTED, not adjudicated, sent in a batch created at or before `due_before`,
/// not answered by a follow-up after `due_before`, and not leased at `now` (unix micros).
pub(super) async fn due(
    db: &Database,
    payer_id: &str,
    due_before: i64,
    now: i64,
    limit: u32,
) -> Result<Vec<(String, ClaimId)>, ClaimStoreError> {
    let rows: Vec<(String, String)> = with_db!(db, |pool| {
        sqlx::query_as(
            "SELECT c.tenant_id, c.id FROM claims c \
             JOIN submission_batches b ON b.tenant_id = c.tenant_id AND b.id = c.submission_batch_id \
             WHERE c.payer_id = $1 AND c.status IN ('SUBMITTED', 'ACCEPTED') \
             AND c.adjudication_id IS NULL AND b.created_at <= $2 \
             AND (c.last_follow_up_at IS NULL OR c.last_follow_up_at <= $2) \
             AND (c.follow_up_lease_until IS NULL OR c.follow_up_lease_until < $3) \
             ORDER BY c.id LIMIT $4",
        )
        .bind(payer_id)
        .bind(due_before)
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    rows.into_iter()
        .map(|(t, id)| {
            ClaimId::parse(&id)
                .map(|id| (t, id))
                .map_err(|e| corrupt("claim id", e.to_string()))
        })
        .collect()
}

/// Takes the follow-up lease of a claim until `until` if nobody holds it at `now`, in `tx`;
/// reports whether it was taken.
pub(super) async fn lease(
    tx: &mut Tx,
    tenant: &TenantId,
    claim_id: ClaimId,
    now: i64,
    until: i64,
) -> Result<bool, ClaimStoreError> {
    let updated = with_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE claims SET follow_up_lease_until = $1 WHERE tenant_id = $2 AND id = $3 \
             AND (follow_up_lease_until IS NULL OR follow_up_lease_until < $4)",
        )
        .bind(until)
        .bind(tenant.as_str())
        .bind(claim_id.to_string())
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    Ok(updated == 1)
}
