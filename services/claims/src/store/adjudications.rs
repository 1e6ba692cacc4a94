//! Adjudications applied to claims: every one kept (reversals included), the one in force pointed
//! at by `claims.adjudication_id`.

use std::collections::HashMap;

use medbill_domain::{ClaimId, TenantId, format_iso_date};
use medbill_storage::rows::{cents, code, date, money, timestamp};
use medbill_storage::{Tx, time, with_db, with_tx};
use rust_decimal::Decimal;
use sqlx::AssertSqlSafe;
use uuid::Uuid;

use super::{ClaimStoreError, SqlClaimStore, corrupt, rows_per_statement, tenant_rows};
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

/// An adjudication of a claim to store and put in force (see
/// [`super::FollowUpStore::record_adjudications_in_force`]).
#[derive(Debug, Clone, Copy)]
pub struct AdjudicationInForce<'a> {
    /// The claim.
    pub claim_id: ClaimId,
    /// The adjudication.
    pub new: NewAdjudication<'a>,
    /// Why no secondary claim is made from it, when coordination of benefits says so.
    pub secondary_note: Option<&'a str>,
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

macro_rules! header_columns {
    () => {
        "id, era_id, claim_payment_id, claim_status_code, charge_cents, paid_cents, \
         patient_responsibility_cents, payer_claim_control_number, payment_date, applied_at, \
         status_before, status_after, reverses_id, reversed_by_id"
    };
}
macro_rules! line_columns {
    () => {
        "position, line_control_number, procedure_code, charge_cents, paid_cents, allowed_cents, units"
    };
}
macro_rules! adjustment_columns {
    () => {
        "line_position, group_code, reason, amount_cents, quantity"
    };
}

const HEADER_SELECT: &str = concat!(
    "SELECT ",
    header_columns!(),
    " FROM claim_adjudications WHERE tenant_id = $1 AND id = $2"
);
const LINES_SELECT: &str = concat!(
    "SELECT ",
    line_columns!(),
    " FROM claim_adjudication_lines WHERE tenant_id = $1 AND adjudication_id = $2 ORDER BY position"
);
const ADJUSTMENTS_SELECT: &str = concat!(
    "SELECT ",
    adjustment_columns!(),
    " FROM claim_adjudication_adjustments WHERE tenant_id = $1 AND adjudication_id = $2 \
     ORDER BY line_position, position"
);
const REMARKS_SELECT: &str = "SELECT line_position, code FROM claim_adjudication_remarks \
     WHERE tenant_id = $1 AND adjudication_id = $2 ORDER BY line_position, position";

/// A row of an adjudication's lines, adjustments or remarks read for many adjudications.
#[derive(sqlx::FromRow)]
struct Keyed<Row> {
    adjudication_id: String,
    #[sqlx(flatten)]
    row: Row,
}

/// The rows by adjudication id, in the order read.
fn group<Row>(rows: Vec<Keyed<Row>>) -> HashMap<String, Vec<Row>> {
    let mut out: HashMap<String, Vec<Row>> = HashMap::new();
    for r in rows {
        out.entry(r.adjudication_id).or_default().push(r.row);
    }
    out
}

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
    insert_many(tx, tenant, &[(claim_id, new)])
        .await?
        .pop()
        .ok_or_else(|| corrupt("adjudication", "none stored"))
}

/// A line's values for `claim_adjudication_lines`, after the tenant.
struct LineValues<'a> {
    adjudication_id: &'a str,
    position: i32,
    line: &'a LineAdjudication,
    charge: i64,
    paid: i64,
    allowed: Option<i64>,
}

/// An adjustment's or remark's place: its adjudication, line (0: the claim) and position.
struct Place<'a> {
    adjudication_id: &'a str,
    line_position: i32,
    position: i32,
}

/// Stores adjudications (of any claims) with their lines, adjustments and remarks in `tx`: one
/// multi-row INSERT per table and [`rows_per_statement`] rows, in `items` order. Returns them as
/// stored, in the same order.
pub(super) async fn insert_many(
    tx: &mut Tx,
    tenant: &TenantId,
    items: &[(ClaimId, NewAdjudication<'_>)],
) -> Result<Vec<AppliedAdjudication>, ClaimStoreError> {
    let t = tenant.as_str();
    let now = time::now_micros();
    let ids: Vec<(Uuid, String, String)> = items
        .iter()
        .map(|(claim, _)| {
            let id = Uuid::now_v7();
            (id, id.to_string(), claim.to_string())
        })
        .collect();

    // Headers: fourteen values each after the tenant.
    let mut headers = Vec::with_capacity(items.len());
    let mut lines = Vec::new();
    let mut adjustments = Vec::new();
    let mut remarks = Vec::new();
    for ((_, new), (_, id, _)) in items.iter().zip(&ids) {
        let a = new.adjudication;
        headers.push((
            cents(a.charge, "adjudication.charge")?,
            cents(a.paid, "adjudication.paid")?,
            a.patient_responsibility
                .map(|m| cents(m, "adjudication.patient_responsibility"))
                .transpose()?,
            a.payment_date.map(format_iso_date),
            new.reverses.map(|u| u.to_string()),
        ));
        let at = |line_position, position| Place {
            adjudication_id: id,
            line_position,
            position,
        };
        for (i, adj) in a.adjustments.iter().enumerate() {
            let amount = cents(adj.amount, &format!("adjudication.adjustments[{i}].amount"))?;
            adjustments.push((at(0, position(i)?), adj, amount));
        }
        for (i, code) in a.remarks.iter().enumerate() {
            remarks.push((at(0, position(i)?), code));
        }
        for (i, line) in a.lines.iter().enumerate() {
            let pos = position(i)?;
            let field = format!("adjudication.lines[{i}]");
            lines.push(LineValues {
                adjudication_id: id,
                position: pos,
                line,
                charge: cents(line.charge, &format!("{field}.charge"))?,
                paid: cents(line.paid, &format!("{field}.paid"))?,
                allowed: line
                    .allowed
                    .map(|m| cents(m, &format!("{field}.allowed")))
                    .transpose()?,
            });
            for (j, adj) in line.adjustments.iter().enumerate() {
                let amount = cents(adj.amount, &format!("{field}.adjustments[{j}].amount"))?;
                adjustments.push((at(pos, position(j)?), adj, amount));
            }
            for (j, code) in line.remarks.iter().enumerate() {
                remarks.push((at(pos, position(j)?), code));
            }
        }
    }

    let rows: Vec<usize> = (0..items.len()).collect();
    for chunk in rows.chunks(rows_per_statement(14)) {
        let sql = format!(
            "INSERT INTO claim_adjudications (tenant_id, id, claim_id, era_id, claim_payment_id, \
             claim_status_code, charge_cents, paid_cents, patient_responsibility_cents, \
             payer_claim_control_number, payment_date, applied_at, status_before, status_after, \
             reverses_id) VALUES {}",
            tenant_rows(chunk.len(), 14)
        );
        with_tx!(tx, |conn| {
            // Only numbered placeholders are formatted into the text; the values are bound.
            let mut query = sqlx::query(AssertSqlSafe(sql.clone())).bind(t);
            for &i in chunk {
                let (_, new) = &items[i];
                let a = new.adjudication;
                let (charge, paid, pr, payment_date, reverses) = &headers[i];
                query = query
                    .bind(&ids[i].1)
                    .bind(&ids[i].2)
                    .bind(&a.era_id)
                    .bind(&a.claim_payment_id)
                    .bind(a.status_code.as_str())
                    .bind(*charge)
                    .bind(*paid)
                    .bind(*pr)
                    .bind(a.payer_claim_control_number.as_deref())
                    .bind(payment_date.as_deref())
                    .bind(now)
                    .bind(new.status_before.as_str())
                    .bind(new.status_after.as_str())
                    .bind(reverses.as_deref());
            }
            query.execute(&mut *conn).await?.rows_affected()
        });
    }
    for chunk in lines.chunks(rows_per_statement(8)) {
        let sql = format!(
            "INSERT INTO claim_adjudication_lines (tenant_id, adjudication_id, position, \
             line_control_number, procedure_code, charge_cents, paid_cents, allowed_cents, units) \
             VALUES {}",
            tenant_rows(chunk.len(), 8)
        );
        with_tx!(tx, |conn| {
            let mut query = sqlx::query(AssertSqlSafe(sql.clone())).bind(t);
            for l in chunk {
                query = query
                    .bind(l.adjudication_id)
                    .bind(l.position)
                    .bind(l.line.line_control_number.as_deref())
                    .bind(&l.line.procedure_code)
                    .bind(l.charge)
                    .bind(l.paid)
                    .bind(l.allowed)
                    .bind(l.line.units.map(|u| u.to_string()));
            }
            query.execute(&mut *conn).await?.rows_affected()
        });
    }
    for chunk in adjustments.chunks(rows_per_statement(7)) {
        let sql = format!(
            "INSERT INTO claim_adjudication_adjustments (tenant_id, adjudication_id, \
             line_position, position, group_code, reason, amount_cents, quantity) VALUES {}",
            tenant_rows(chunk.len(), 7)
        );
        with_tx!(tx, |conn| {
            let mut query = sqlx::query(AssertSqlSafe(sql.clone())).bind(t);
            for (at, adj, amount) in chunk {
                query = query
                    .bind(at.adjudication_id)
                    .bind(at.line_position)
                    .bind(at.position)
                    .bind(adj.group.as_str())
                    .bind(&adj.reason)
                    .bind(*amount)
                    .bind(adj.quantity.map(|q| q.to_string()));
            }
            query.execute(&mut *conn).await?.rows_affected()
        });
    }
    for chunk in remarks.chunks(rows_per_statement(4)) {
        let sql = format!(
            "INSERT INTO claim_adjudication_remarks (tenant_id, adjudication_id, line_position, \
             position, code) VALUES {}",
            tenant_rows(chunk.len(), 4)
        );
        with_tx!(tx, |conn| {
            let mut query = sqlx::query(AssertSqlSafe(sql.clone())).bind(t);
            for (at, code) in chunk {
                query = query
                    .bind(at.adjudication_id)
                    .bind(at.line_position)
                    .bind(at.position)
                    .bind(code.as_str());
            }
            query.execute(&mut *conn).await?.rows_affected()
        });
    }
    let applied_at = timestamp(now, "adjudication applied_at")?;
    Ok(items
        .iter()
        .zip(ids)
        .map(|((_, new), (id, _, _))| AppliedAdjudication {
            id,
            adjudication: new.adjudication.clone(),
            applied_at,
            status_before: new.status_before,
            status_after: new.status_after,
            reverses: new.reverses,
            reversed_by: None,
        })
        .collect())
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
    set_in_force_many(
        tx,
        tenant,
        &[(claim_id, adjudication, payer_claim_control_number)],
    )
    .await
}

/// What [`set_in_force`] does, for distinct claims: one UPDATE per [`rows_per_statement`] claims.
/// NOT_FOUND naming the first claim of a statement that did not update all of its claims.
pub(super) async fn set_in_force_many(
    tx: &mut Tx,
    tenant: &TenantId,
    items: &[(ClaimId, Option<Uuid>, Option<&str>)],
) -> Result<(), ClaimStoreError> {
    for chunk in items.chunks(rows_per_statement(5)) {
        // $1 tenant; each claim binds its id and adjudication, its id and number, then its id.
        // `tenant_id || ''`: the claims by their ids alone (see `history::update_status`).
        let n = chunk.len();
        let cases = |first: usize| -> String {
            (0..n)
                .map(|i| format!(" WHEN ${} THEN ${}", first + 2 * i, first + 1 + 2 * i))
                .collect()
        };
        let sql = format!(
            // updated_at is the status change's, made in the same transaction.
            "UPDATE claims SET adjudication_id = CASE id{} END, \
             payer_claim_control_number = COALESCE(CASE id{} END, payer_claim_control_number) \
             WHERE tenant_id || '' = $1 AND id IN ({})",
            cases(2),
            cases(2 + 2 * n),
            medbill_storage::filters::placeholders(2 + 4 * n, n)
        );
        let values: Vec<(String, Option<String>, Option<&str>)> = chunk
            .iter()
            .map(|(claim, adjudication, number)| {
                (
                    claim.to_string(),
                    adjudication.map(|u| u.to_string()),
                    *number,
                )
            })
            .collect();
        let updated = with_tx!(tx, |conn| {
            // Only numbered placeholders are formatted into the text; the values are bound.
            let mut query = sqlx::query(AssertSqlSafe(sql.clone()))
                .persistent(false)
                .bind(tenant.as_str());
            for (claim, adjudication, _) in &values {
                query = query.bind(claim).bind(adjudication.as_deref());
            }
            for (claim, _, number) in &values {
                query = query.bind(claim).bind(*number);
            }
            for (claim, _, _) in &values {
                query = query.bind(claim);
            }
            query.execute(&mut *conn).await?.rows_affected()
        });
        if updated != n as u64 {
            return Err(ClaimStoreError::NotFound(chunk[0].0));
        }
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

    /// Reads the adjudications with these ids, four one-shot statements per
    /// [`rows_per_statement`] ids (their text changes with the list's length).
    async fn load_adjudications(
        &self,
        tenant: &TenantId,
        ids: &[String],
    ) -> Result<HashMap<String, AppliedAdjudication>, ClaimStoreError> {
        let t = tenant.as_str();
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(rows_per_statement(1)) {
            let list = medbill_storage::filters::placeholders(2, chunk.len());
            let headers_sql = format!(
                concat!(
                    "SELECT ",
                    header_columns!(),
                    " FROM claim_adjudications WHERE tenant_id = $1 AND id IN ({})"
                ),
                list
            );
            // An adjudication's rows in one of its child tables, for the ids of `list`.
            let children = |columns: &str, table: &str, order: &str| {
                format!(
                    "SELECT adjudication_id, {columns} FROM {table} WHERE tenant_id = $1 \
                     AND adjudication_id IN ({list}) ORDER BY adjudication_id, {order}"
                )
            };
            let lines_sql = children(line_columns!(), "claim_adjudication_lines", "position");
            let adjustments_sql = children(
                adjustment_columns!(),
                "claim_adjudication_adjustments",
                "line_position, position",
            );
            let remarks_sql = children(
                "line_position, code",
                "claim_adjudication_remarks",
                "line_position, position",
            );
            // Only numbered placeholders are formatted into the text; the tenant and ids are bound.
            macro_rules! fetch_for_chunk {
                ($pool:expr, $sql:expr) => {{
                    let mut q = sqlx::query_as(AssertSqlSafe($sql.clone()))
                        .persistent(false)
                        .bind(t);
                    for id in chunk {
                        q = q.bind(id);
                    }
                    q.fetch_all($pool).await?
                }};
            }
            let (headers, lines, adjustments, remarks) = with_db!(self.db, |pool| {
                let headers: Vec<HeaderRow> = fetch_for_chunk!(pool, headers_sql);
                let lines: Vec<Keyed<LineRow>> = fetch_for_chunk!(pool, lines_sql);
                let adjustments: Vec<Keyed<AdjustmentRow>> =
                    fetch_for_chunk!(pool, adjustments_sql);
                let remarks: Vec<Keyed<RemarkRow>> = fetch_for_chunk!(pool, remarks_sql);
                (headers, lines, adjustments, remarks)
            });
            let mut lines = group(lines);
            let mut adjustments = group(adjustments);
            let mut remarks = group(remarks);
            for h in headers {
                let id = h.id.clone();
                let applied = assemble(
                    h,
                    lines.remove(&id).unwrap_or_default(),
                    adjustments.remove(&id).unwrap_or_default(),
                    remarks.remove(&id).unwrap_or_default(),
                )?;
                out.insert(id, applied);
            }
        }
        Ok(out)
    }

    /// Fills each claim's adjudication in force from its id, read for all the claims at once.
    pub(super) async fn attach(
        &self,
        tenant: &TenantId,
        claims: Vec<(Claim, Option<String>)>,
    ) -> Result<Vec<Claim>, ClaimStoreError> {
        let ids: Vec<String> = claims.iter().filter_map(|(_, id)| id.clone()).collect();
        let mut found = if ids.is_empty() {
            HashMap::new()
        } else {
            self.load_adjudications(tenant, &ids).await?
        };
        let mut out = Vec::with_capacity(claims.len());
        for (mut claim, adjudication_id) in claims {
            if let Some(id) = adjudication_id {
                let applied = found
                    .remove(&id)
                    .ok_or_else(|| corrupt("claims.adjudication_id", id))?;
                claim.adjudication = Some(applied);
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
