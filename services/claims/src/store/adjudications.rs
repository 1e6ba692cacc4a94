//! Adjudications applied to claims: every one kept (reversals included), the one in force pointed
//! at by `claims.adjudication_id`.

use medbill_domain::{ClaimId, TenantId, format_iso_date};
use medbill_storage::rows::{cents, code, date, money, timestamp};
use medbill_storage::{Tx, time, with_db, with_tx};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::{ClaimStoreError, SqlClaimStore, corrupt};
use crate::adjudication::{
    Adjudication, AdjustmentGroup, AppliedAdjudication, ClaimPaymentStatus, LineAdjudication,
};
use crate::model::{Claim, ClaimStatus};

/// An adjudication to store.
#[derive(Debug, Clone, Copy)]
pub struct NewAdjudication<'a> {
    /// What the payer said.
    pub adjudication: &'a Adjudication,
    /// The claim's status before it is applied.
    pub status_before: ClaimStatus,
    /// The claim's status after.
    pub status_after: ClaimStatus,
    /// For a reversal, the adjudication it undoes.
    pub reverses: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
struct HeaderRow {
    id: String,
    era_id: String,
    claim_payment_id: String,
    claim_status_code: String,
    charge_cents: i64,
    paid_cents: i64,
    patient_responsibility_cents: Option<i64>,
    payer_claim_control_number: Option<String>,
    payment_date: Option<String>,
    applied_at: i64,
    status_before: String,
    status_after: String,
    reverses_id: Option<String>,
    reversed_by_id: Option<String>,
}

#[derive(sqlx::FromRow)]
struct LineRow {
    position: i32,
    line_control_number: Option<String>,
    procedure_code: String,
    charge_cents: i64,
    paid_cents: i64,
    allowed_cents: Option<i64>,
    units: Option<String>,
}

#[derive(sqlx::FromRow)]
struct AdjustmentRow {
    line_position: i32,
    group_code: String,
    reason: String,
    amount_cents: i64,
    quantity: Option<String>,
}

#[derive(sqlx::FromRow)]
struct RemarkRow {
    line_position: i32,
    code: String,
}

const HEADER_SELECT: &str = "SELECT id, era_id, claim_payment_id, claim_status_code, charge_cents, paid_cents, \
     patient_responsibility_cents, payer_claim_control_number, payment_date, applied_at, \
     status_before, status_after, reverses_id, reversed_by_id \
     FROM claim_adjudications WHERE tenant_id = $1 AND id = $2";
const LINES_SELECT: &str = "SELECT position, line_control_number, procedure_code, charge_cents, paid_cents, \
     allowed_cents, units FROM claim_adjudication_lines \
     WHERE tenant_id = $1 AND adjudication_id = $2 ORDER BY position";
const ADJUSTMENTS_SELECT: &str = "SELECT line_position, group_code, reason, amount_cents, quantity \
     FROM claim_adjudication_adjustments WHERE tenant_id = $1 AND adjudication_id = $2 \
     ORDER BY line_position, position";
const REMARKS_SELECT: &str = "SELECT line_position, code FROM claim_adjudication_remarks \
     WHERE tenant_id = $1 AND adjudication_id = $2 ORDER BY line_position, position";

fn exact(raw: Option<String>, what: &'static str) -> Result<Option<Decimal>, ClaimStoreError> {
    raw.map(|s| Decimal::from_str_exact(&s).map_err(|e| corrupt(what, format!("{s:?}: {e}"))))
        .transpose()
}

fn uuid(raw: &str, what: &'static str) -> Result<Uuid, ClaimStoreError> {
    Uuid::try_parse(raw).map_err(|e| corrupt(what, e.to_string()))
}

fn assemble(
    h: HeaderRow,
    lines: Vec<LineRow>,
    adjustments: Vec<AdjustmentRow>,
    remarks: Vec<RemarkRow>,
) -> Result<AppliedAdjudication, ClaimStoreError> {
    let mut out_lines = Vec::with_capacity(lines.len());
    for l in lines {
        out_lines.push(LineAdjudication {
            line_control_number: l.line_control_number,
            procedure_code: l.procedure_code,
            charge: money(l.charge_cents),
            paid: money(l.paid_cents),
            allowed: l.allowed_cents.map(money),
            units: exact(l.units, "adjudication line units")?,
            adjustments: Vec::new(),
            remarks: Vec::new(),
        });
        if usize::try_from(l.position).ok() != Some(out_lines.len()) {
            return Err(corrupt(
                "adjudication line position",
                l.position.to_string(),
            ));
        }
    }
    let mut claim_adjustments = Vec::new();
    for a in adjustments {
        let adjustment = crate::adjudication::Adjustment {
            group: code::<AdjustmentGroup>(&a.group_code, "adjustment group")?,
            reason: a.reason,
            amount: money(a.amount_cents),
            quantity: exact(a.quantity, "adjustment quantity")?,
        };
        match a.line_position {
            0 => claim_adjustments.push(adjustment),
            n => line_at(&mut out_lines, n)?.adjustments.push(adjustment),
        }
    }
    let mut claim_remarks = Vec::new();
    for r in remarks {
        match r.line_position {
            0 => claim_remarks.push(r.code),
            n => line_at(&mut out_lines, n)?.remarks.push(r.code),
        }
    }
    Ok(AppliedAdjudication {
        id: uuid(&h.id, "adjudication id")?,
        adjudication: Adjudication {
            era_id: h.era_id,
            claim_payment_id: h.claim_payment_id,
            status_code: code::<ClaimPaymentStatus>(&h.claim_status_code, "CLP02")?,
            charge: money(h.charge_cents),
            paid: money(h.paid_cents),
            patient_responsibility: h.patient_responsibility_cents.map(money),
            payer_claim_control_number: h.payer_claim_control_number,
            adjustments: claim_adjustments,
            remarks: claim_remarks,
            lines: out_lines,
            payment_date: h
                .payment_date
                .as_deref()
                .map(|d| date(d, "adjudication payment date"))
                .transpose()?,
        },
        applied_at: timestamp(h.applied_at, "adjudication applied_at")?,
        status_before: code::<ClaimStatus>(&h.status_before, "adjudication status before")?,
        status_after: code::<ClaimStatus>(&h.status_after, "adjudication status after")?,
        reverses: h
            .reverses_id
            .as_deref()
            .map(|s| uuid(s, "reversed adjudication id"))
            .transpose()?,
        reversed_by: h
            .reversed_by_id
            .as_deref()
            .map(|s| uuid(s, "reversal id"))
            .transpose()?,
    })
}

fn line_at(
    lines: &mut [LineAdjudication],
    position: i32,
) -> Result<&mut LineAdjudication, ClaimStoreError> {
    usize::try_from(position)
        .ok()
        .and_then(|p| p.checked_sub(1))
        .and_then(|i| lines.get_mut(i))
        .ok_or_else(|| corrupt("adjudication line position", position.to_string()))
}

fn position(i: usize) -> Result<i32, ClaimStoreError> {
    i32::try_from(i + 1).map_err(|_| corrupt("adjudication position", i.to_string()))
}

/// Stores an adjudication with its lines, adjustments and remarks in `tx` and returns it as stored.
pub(super) async fn insert(
    tx: &mut Tx,
    tenant: &TenantId,
    claim_id: ClaimId,
    new: NewAdjudication<'_>,
) -> Result<AppliedAdjudication, ClaimStoreError> {
    let a = new.adjudication;
    let t = tenant.as_str();
    let uuid = Uuid::now_v7();
    let id = uuid.to_string();
    let now = time::now_micros();
    let charge = cents(a.charge, "adjudication.charge")?;
    let paid = cents(a.paid, "adjudication.paid")?;
    let pr = a
        .patient_responsibility
        .map(|m| cents(m, "adjudication.patient_responsibility"))
        .transpose()?;
    let payment_date = a.payment_date.map(format_iso_date);
    let reverses = new.reverses.map(|u| u.to_string());
    with_tx!(tx, |conn| {
        sqlx::query(
            "INSERT INTO claim_adjudications (tenant_id, id, claim_id, era_id, claim_payment_id, \
             claim_status_code, charge_cents, paid_cents, patient_responsibility_cents, \
             payer_claim_control_number, payment_date, applied_at, status_before, status_after, reverses_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(t)
        .bind(&id)
        .bind(claim_id.to_string())
        .bind(&a.era_id)
        .bind(&a.claim_payment_id)
        .bind(a.status_code.as_str())
        .bind(charge)
        .bind(paid)
        .bind(pr)
        .bind(a.payer_claim_control_number.as_deref())
        .bind(payment_date.as_deref())
        .bind(now)
        .bind(new.status_before.as_str())
        .bind(new.status_after.as_str())
        .bind(reverses.as_deref())
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    insert_adjustments(tx, t, &id, 0, &a.adjustments, "adjudication.adjustments").await?;
    insert_remarks(tx, t, &id, 0, &a.remarks).await?;
    for (i, line) in a.lines.iter().enumerate() {
        let pos = position(i)?;
        let field = format!("adjudication.lines[{i}]");
        let charge = cents(line.charge, &format!("{field}.charge"))?;
        let paid = cents(line.paid, &format!("{field}.paid"))?;
        let allowed = line
            .allowed
            .map(|m| cents(m, &format!("{field}.allowed")))
            .transpose()?;
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO claim_adjudication_lines (tenant_id, adjudication_id, position, \
                 line_control_number, procedure_code, charge_cents, paid_cents, allowed_cents, units) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(t)
            .bind(&id)
            .bind(pos)
            .bind(line.line_control_number.as_deref())
            .bind(&line.procedure_code)
            .bind(charge)
            .bind(paid)
            .bind(allowed)
            .bind(line.units.map(|u| u.to_string()))
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
        insert_adjustments(
            tx,
            t,
            &id,
            pos,
            &line.adjustments,
            &format!("{field}.adjustments"),
        )
        .await?;
        insert_remarks(tx, t, &id, pos, &line.remarks).await?;
    }
    Ok(AppliedAdjudication {
        id: uuid,
        adjudication: a.clone(),
        applied_at: timestamp(now, "adjudication applied_at")?,
        status_before: new.status_before,
        status_after: new.status_after,
        reverses: new.reverses,
        reversed_by: None,
    })
}

async fn insert_adjustments(
    tx: &mut Tx,
    tenant: &str,
    adjudication_id: &str,
    line_position: i32,
    adjustments: &[crate::adjudication::Adjustment],
    field: &str,
) -> Result<(), ClaimStoreError> {
    for (i, adj) in adjustments.iter().enumerate() {
        let amount = cents(adj.amount, &format!("{field}[{i}].amount"))?;
        let pos = position(i)?;
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO claim_adjudication_adjustments (tenant_id, adjudication_id, line_position, \
                 position, group_code, reason, amount_cents, quantity) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(tenant)
            .bind(adjudication_id)
            .bind(line_position)
            .bind(pos)
            .bind(adj.group.as_str())
            .bind(&adj.reason)
            .bind(amount)
            .bind(adj.quantity.map(|q| q.to_string()))
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
    }
    Ok(())
}

async fn insert_remarks(
    tx: &mut Tx,
    tenant: &str,
    adjudication_id: &str,
    line_position: i32,
    remarks: &[String],
) -> Result<(), ClaimStoreError> {
    for (i, remark) in remarks.iter().enumerate() {
        let pos = position(i)?;
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO claim_adjudication_remarks (tenant_id, adjudication_id, line_position, \
                 position, code) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(tenant)
            .bind(adjudication_id)
            .bind(line_position)
            .bind(pos)
            .bind(remark)
            .execute(&mut *conn)
            .await?
            .rows_affected()
        });
    }
    Ok(())
}

/// Reads the adjudication in force on a claim inside `tx` (what a reversal undoes).
pub(super) async fn in_force(
    tx: &mut Tx,
    tenant: &TenantId,
    claim_id: ClaimId,
) -> Result<Option<AppliedAdjudication>, ClaimStoreError> {
    let t = tenant.as_str();
    let claim = claim_id.to_string();
    let id: Option<Option<String>> = with_tx!(tx, |conn| {
        sqlx::query_scalar("SELECT adjudication_id FROM claims WHERE tenant_id = $1 AND id = $2")
            .bind(t)
            .bind(&claim)
            .fetch_optional(&mut *conn)
            .await?
    });
    let Some(id) = id.ok_or(ClaimStoreError::NotFound(claim_id))? else {
        return Ok(None);
    };
    let (header, lines, adjustments, remarks) = with_tx!(tx, |conn| {
        let header: Option<HeaderRow> = sqlx::query_as(HEADER_SELECT)
            .bind(t)
            .bind(&id)
            .fetch_optional(&mut *conn)
            .await?;
        let lines: Vec<LineRow> = sqlx::query_as(LINES_SELECT)
            .bind(t)
            .bind(&id)
            .fetch_all(&mut *conn)
            .await?;
        let adjustments: Vec<AdjustmentRow> = sqlx::query_as(ADJUSTMENTS_SELECT)
            .bind(t)
            .bind(&id)
            .fetch_all(&mut *conn)
            .await?;
        let remarks: Vec<RemarkRow> = sqlx::query_as(REMARKS_SELECT)
            .bind(t)
            .bind(&id)
            .fetch_all(&mut *conn)
            .await?;
        (header, lines, adjustments, remarks)
    });
    let header = header.ok_or_else(|| corrupt("claims.adjudication_id", id.clone()))?;
    assemble(header, lines, adjustments, remarks).map(Some)
}

/// Marks `reversed` as undone by `reversal` in `tx`.
pub(super) async fn mark_reversed(
    tx: &mut Tx,
    tenant: &TenantId,
    reversed: Uuid,
    reversal: Uuid,
) -> Result<(), ClaimStoreError> {
    let updated = with_tx!(tx, |conn| {
        sqlx::query(
            "UPDATE claim_adjudications SET reversed_by_id = $1 \
             WHERE tenant_id = $2 AND id = $3 AND reversed_by_id IS NULL",
        )
        .bind(reversal.to_string())
        .bind(tenant.as_str())
        .bind(reversed.to_string())
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if updated != 1 {
        return Err(corrupt(
            "reversed adjudication",
            format!("{reversed} is missing or already reversed"),
        ));
    }
    Ok(())
}

/// Points the claim at its adjudication in force (`None` after a reversal) and records the
/// payer's claim control number (CLP07) when one was sent, in `tx`.
pub(super) async fn set_in_force(
    tx: &mut Tx,
    tenant: &TenantId,
    claim_id: ClaimId,
    adjudication: Option<Uuid>,
    payer_claim_control_number: Option<&str>,
) -> Result<(), ClaimStoreError> {
    let updated = with_tx!(tx, |conn| {
        sqlx::query(
            // updated_at is the status change's, made in the same transaction.
            "UPDATE claims SET adjudication_id = $1, \
             payer_claim_control_number = COALESCE($2, payer_claim_control_number) \
             WHERE tenant_id = $3 AND id = $4",
        )
        .bind(adjudication.map(|u| u.to_string()))
        .bind(payer_claim_control_number)
        .bind(tenant.as_str())
        .bind(claim_id.to_string())
        .execute(&mut *conn)
        .await?
        .rows_affected()
    });
    if updated != 1 {
        return Err(ClaimStoreError::NotFound(claim_id));
    }
    Ok(())
}

impl SqlClaimStore {
    /// Reads one stored adjudication by id.
    async fn load_adjudication(
        &self,
        tenant: &TenantId,
        id: &str,
    ) -> Result<AppliedAdjudication, ClaimStoreError> {
        let t = tenant.as_str();
        let (header, lines, adjustments, remarks) = with_db!(self.db, |pool| {
            let header: Option<HeaderRow> = sqlx::query_as(HEADER_SELECT)
                .bind(t)
                .bind(id)
                .fetch_optional(pool)
                .await?;
            let lines: Vec<LineRow> = sqlx::query_as(LINES_SELECT)
                .bind(t)
                .bind(id)
                .fetch_all(pool)
                .await?;
            let adjustments: Vec<AdjustmentRow> = sqlx::query_as(ADJUSTMENTS_SELECT)
                .bind(t)
                .bind(id)
                .fetch_all(pool)
                .await?;
            let remarks: Vec<RemarkRow> = sqlx::query_as(REMARKS_SELECT)
                .bind(t)
                .bind(id)
                .fetch_all(pool)
                .await?;
            (header, lines, adjustments, remarks)
        });
        let header = header.ok_or_else(|| corrupt("claims.adjudication_id", id.to_owned()))?;
        assemble(header, lines, adjustments, remarks)
    }

    /// Fills each claim's adjudication in force from its id (one look-up per adjudicated claim).
    pub(super) async fn attach(
        &self,
        tenant: &TenantId,
        claims: Vec<(Claim, Option<String>)>,
    ) -> Result<Vec<Claim>, ClaimStoreError> {
        let mut out = Vec::with_capacity(claims.len());
        for (mut claim, adjudication_id) in claims {
            if let Some(id) = adjudication_id {
                claim.adjudication = Some(self.load_adjudication(tenant, &id).await?);
            }
            out.push(claim);
        }
        Ok(out)
    }

    /// Returns every adjudication applied to a claim, oldest first.
    pub(super) async fn adjudication_history(
        &self,
        tenant: &TenantId,
        claim_id: ClaimId,
    ) -> Result<Vec<AppliedAdjudication>, ClaimStoreError> {
        let t = tenant.as_str();
        let ids: Vec<String> = with_db!(self.db, |pool| {
            sqlx::query_scalar(
                "SELECT id FROM claim_adjudications WHERE tenant_id = $1 AND claim_id = $2 \
                 ORDER BY applied_at, id",
            )
            .bind(t)
            .bind(claim_id.to_string())
            .fetch_all(pool)
            .await?
        });
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.load_adjudication(tenant, &id).await?);
        }
        Ok(out)
    }
}
