//! Persistence of claim payments and their posting: the [`PaymentStore`] trait, implemented by
//! [`SqlEraStore`] with queries written once for PostgreSQL and SQLite.
//!
//! Claim payments are written with their ERA (multi-row INSERTs, a batch at a time); posting
//! updates them and writes the posting records in the caller's transaction.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::NaiveDate;
use medbill_domain::{EraId, TenantId, format_iso_date};
use medbill_storage::rows::{cents, code, date, money, statement_pieces, timestamp};
use medbill_storage::{StorageError, Tx, time, with_db, with_tx};
use rust_decimal::Decimal;

use super::{EraStoreError, SqlEraStore, corrupt};
use crate::model::{
    Adjustment, ClaimPayment, ClaimPaymentFilter, ClaimPaymentId, LineMatch, LinePayment,
    NewClaimPayment, PostingStatus, ProcedureCode,
};

/// How a claim payment came to be posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostingMethod {
    /// By the posting worker, the ERA balancing and the claim confirmed.
    Auto,
    /// After an operator decided to post an unbalanced ERA.
    Operator,
    /// Matched by hand from the unmatched worklist.
    ManualMatch,
}

impl PostingMethod {
    fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "AUTO",
            Self::Operator => "OPERATOR",
            Self::ManualMatch => "MANUAL_MATCH",
        }
    }
}

/// What posting decided for one claim payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostingOutcome {
    /// The claim payment.
    pub id: ClaimPaymentId,
    /// POSTED or UNMATCHED.
    pub status: PostingStatus,
    /// The matched claim; empty when unmatched.
    pub claim_id: String,
    /// Why unmatched, or the operator's note.
    pub match_note: String,
    /// The claim payment a reversal undoes, when found.
    pub reverses: Option<ClaimPaymentId>,
    /// Each line's match, in line order (empty when unmatched).
    pub lines: Vec<(u32, LineMatch, Option<u32>, String)>,
    /// How it was posted (ignored when unmatched).
    pub method: PostingMethod,
    /// The operator's reason, when one decided.
    pub reason: String,
}

/// Claim payments: stored with their ERA, matched and posted later.
#[async_trait]
pub trait PaymentStore: Send + Sync {
    /// Returns up to `limit` claim payments matching `filter` after `after`, in ERA then CLP order
    /// (ids are UUID v7 assigned in that order).
    async fn list_claim_payments(
        &self,
        tenant: &TenantId,
        filter: &ClaimPaymentFilter,
        after: Option<ClaimPaymentId>,
        limit: u32,
    ) -> Result<Vec<ClaimPayment>, EraStoreError>;

    /// Returns up to `limit` PENDING claim payments of one ERA with ids greater than `after`, in
    /// CLP order: the posting worker's page, read by the ERA's index (the filtered listing's
    /// optional conditions cannot use one).
    async fn pending_payments(
        &self,
        tenant: &TenantId,
        era_id: EraId,
        after: Option<ClaimPaymentId>,
        limit: u32,
    ) -> Result<Vec<ClaimPayment>, EraStoreError>;

    /// Returns one claim payment, or `None` when the tenant has none with this id.
    async fn get_claim_payment(
        &self,
        tenant: &TenantId,
        id: ClaimPaymentId,
    ) -> Result<Option<ClaimPayment>, EraStoreError>;

    /// Records posting outcomes in `tx`: each payment moves from `from` to its outcome status only
    /// if it is still in `from` (ABORTED-like `Conflict` otherwise, so a payment is posted once);
    /// posted ones get their posting record and line matches.
    async fn record_postings(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        era_id: EraId,
        from: PostingStatus,
        outcomes: &[PostingOutcome],
    ) -> Result<(), EraStoreError>;

    /// Finds the posted, not yet reversed payment a reversal (CLP02 22) undoes: same CLP01 and
    /// CLP07 (when sent), paid the opposite amount, most recent first.
    async fn find_reversed(
        &self,
        tenant: &TenantId,
        reversal: &ClaimPayment,
    ) -> Result<Option<ClaimPaymentId>, EraStoreError>;
}

#[derive(sqlx::FromRow)]
struct PaymentRow {
    id: String,
    era_id: String,
    position: i32,
    payer_id: String,
    payment_date: String,
    patient_control_number: String,
    status_code: String,
    charge_cents: i64,
    paid_cents: i64,
    patient_responsibility_cents: Option<i64>,
    filing_indicator: String,
    payer_claim_control_number: String,
    facility_type_code: String,
    frequency_code: String,
    statement_from: String,
    statement_to: String,
    posting_status: String,
    claim_id: String,
    match_note: String,
    reverses_id: String,
    posted_at: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct LineRow {
    claim_payment_id: String,
    line_number: i32,
    procedure_qualifier: String,
    procedure_code: String,
    modifiers: String,
    submitted_procedure: String,
    charge_cents: i64,
    paid_cents: i64,
    revenue_code: String,
    units: String,
    service_date: String,
    line_control_number: String,
    allowed_cents: Option<i64>,
    matched_by: String,
    claim_line_number: Option<i32>,
    claim_line_control_number: String,
}

#[derive(sqlx::FromRow)]
struct AdjustmentRow {
    claim_payment_id: String,
    line_number: i32,
    group_code: String,
    reason: String,
    amount_cents: i64,
    quantity: String,
}

#[derive(sqlx::FromRow)]
struct RemarkRow {
    claim_payment_id: String,
    line_number: i32,
    code: String,
}

macro_rules! payment_columns {
    () => {
        "id, era_id, position, payer_id, payment_date, patient_control_number, status_code, \
         charge_cents, paid_cents, patient_responsibility_cents, filing_indicator, \
         payer_claim_control_number, facility_type_code, frequency_code, statement_from, \
         statement_to, posting_status, claim_id, match_note, reverses_id, posted_at"
    };
}

/// The listing filter: `$1` tenant, `$2` era, `$3` claim, `$4` CLP01, `$5` payer, `$6` paid
/// from, `$7` paid to, `$8` status, `$9` after id, `$10` limit.
macro_rules! payment_filter {
    () => {
        "SELECT id FROM claim_payments WHERE tenant_id = $1 \
         AND ($2 IS NULL OR era_id = $2) \
         AND ($3 IS NULL OR claim_id = $3) \
         AND ($4 IS NULL OR patient_control_number = $4) \
         AND ($5 IS NULL OR payer_id = $5) \
         AND ($6 IS NULL OR (payment_date <> '' AND payment_date >= $6)) \
         AND ($7 IS NULL OR (payment_date <> '' AND payment_date <= $7)) \
         AND ($8 IS NULL OR posting_status = $8) \
         AND ($9 IS NULL OR id > $9) \
         ORDER BY id LIMIT $10"
    };
}

pub(super) fn procedure_text(p: &ProcedureCode) -> String {
    let mut parts = vec![p.qualifier.as_str(), p.code.as_str()];
    parts.extend(p.modifiers.iter().map(String::as_str));
    parts.join(":")
}

pub(super) fn procedure_from_text(text: &str) -> ProcedureCode {
    let mut parts = text.split(':').map(str::to_owned);
    ProcedureCode {
        qualifier: parts.next().unwrap_or_default(),
        code: parts.next().unwrap_or_default(),
        modifiers: parts.collect(),
    }
}

pub(super) fn optional_date(
    text: &str,
    what: &'static str,
) -> Result<Option<NaiveDate>, StorageError> {
    if text.is_empty() {
        Ok(None)
    } else {
        date(text, what).map(Some)
    }
}

fn decimal(text: &str, what: &'static str) -> Result<Option<Decimal>, StorageError> {
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<Decimal>()
        .map(Some)
        .map_err(|e| StorageError::corrupt(what, format!("{text:?}: {e}")))
}

fn to_i32(n: usize, what: &str) -> Result<i32, EraStoreError> {
    i32::try_from(n).map_err(|_| EraStoreError::Invalid {
        field: what.to_owned(),
        message: format!("{n} does not fit"),
    })
}

/// One claim payment flattened to its rows, amounts in cents, ready to bind.
struct Flat {
    payment: (String, i32, i64, i64, Option<i64>),
    lines: Vec<(i32, i64, i64, Option<i64>)>,
    adjustments: Vec<(i32, i32, i64)>,
}

fn flatten(i: usize, p: &NewClaimPayment) -> Result<Flat, EraStoreError> {
    let field = |f: &str| format!("claim_payments[{i}].{f}");
    let mut lines = Vec::with_capacity(p.lines.len());
    let mut adjustments = Vec::new();
    for (j, a) in p.adjustments.iter().enumerate() {
        adjustments.push((
            0,
            to_i32(j + 1, "adjustment")?,
            cents(a.amount, &field("adjustments"))?,
        ));
    }
    for l in &p.lines {
        let n = i32::try_from(l.line_number).map_err(|_| EraStoreError::Invalid {
            field: field("lines"),
            message: "too many lines".into(),
        })?;
        lines.push((
            n,
            cents(l.charge, &field("lines.charge"))?,
            cents(l.paid, &field("lines.paid"))?,
            l.allowed
                .map(|a| cents(a, &field("lines.allowed")))
                .transpose()?,
        ));
        for (j, a) in l.adjustments.iter().enumerate() {
            adjustments.push((
                n,
                to_i32(j + 1, "adjustment")?,
                cents(a.amount, &field("lines.adjustments"))?,
            ));
        }
    }
    Ok(Flat {
        payment: (
            ClaimPaymentId::new().to_string(),
            to_i32(i + 1, "claim_payments")?,
            cents(p.charge, &field("charge"))?,
            cents(p.paid, &field("paid"))?,
            p.patient_responsibility
                .map(|a| cents(a, &field("patient_responsibility")))
                .transpose()?,
        ),
        lines,
        adjustments,
    })
}

impl SqlEraStore {
    /// Writes an ERA's claim payments in `tx` with multi-row INSERTs, in `status`.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn insert_claim_payments(
        &self,
        tx: &mut Tx,
        tenant: &str,
        era_id: &str,
        payer_id: &str,
        payment_date: Option<NaiveDate>,
        status: PostingStatus,
        payments: &[NewClaimPayment],
    ) -> Result<(), EraStoreError> {
        let payment_date = payment_date.map(format_iso_date).unwrap_or_default();
        let flat = payments
            .iter()
            .enumerate()
            .map(|(i, p)| flatten(i, p))
            .collect::<Result<Vec<_>, _>>()?;
        let rows: Vec<(&NewClaimPayment, &Flat)> = payments.iter().zip(&flat).collect();
        for chunk in statement_pieces(&rows) {
            with_tx!(tx, |conn| {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO claim_payments (tenant_id, id, era_id, position, payer_id, \
                     payment_date, patient_control_number, status_code, charge_cents, paid_cents, \
                     patient_responsibility_cents, filing_indicator, payer_claim_control_number, \
                     facility_type_code, frequency_code, statement_from, statement_to, \
                     posting_status) ",
                );
                q.push_values(chunk, |mut b, (p, f)| {
                    let (id, position, charge, paid, pr) = &f.payment;
                    b.push_bind(tenant)
                        .push_bind(id.as_str())
                        .push_bind(era_id)
                        .push_bind(*position)
                        .push_bind(payer_id)
                        .push_bind(payment_date.as_str())
                        .push_bind(p.patient_control_number.as_str())
                        .push_bind(p.status_code.as_str())
                        .push_bind(*charge)
                        .push_bind(*paid)
                        .push_bind(*pr)
                        .push_bind(p.filing_indicator.as_str())
                        .push_bind(p.payer_claim_control_number.as_str())
                        .push_bind(p.facility_type_code.as_str())
                        .push_bind(p.frequency_code.as_str())
                        .push_bind(p.statement_from.map(format_iso_date).unwrap_or_default())
                        .push_bind(p.statement_to.map(format_iso_date).unwrap_or_default())
                        .push_bind(status.as_str());
                });
                q.build().execute(&mut *conn).await?;
            });
            let lines: Vec<_> = chunk
                .iter()
                .flat_map(|(p, f)| {
                    p.lines
                        .iter()
                        .zip(&f.lines)
                        .map(move |(l, c)| (f.payment.0.as_str(), l, c))
                })
                .collect();
            for part in statement_pieces(&lines) {
                with_tx!(tx, |conn| {
                    let mut q = sqlx::QueryBuilder::new(
                        "INSERT INTO claim_payment_lines (tenant_id, claim_payment_id, \
                         line_number, procedure_qualifier, procedure_code, modifiers, \
                         submitted_procedure, charge_cents, paid_cents, revenue_code, units, \
                         service_date, line_control_number, allowed_cents) ",
                    );
                    q.push_values(part, |mut b, (id, l, (n, charge, paid, allowed))| {
                        b.push_bind(tenant)
                            .push_bind(*id)
                            .push_bind(*n)
                            .push_bind(l.procedure.qualifier.as_str())
                            .push_bind(l.procedure.code.as_str())
                            .push_bind(l.procedure.modifiers.join(":"))
                            .push_bind(
                                l.submitted_procedure
                                    .as_ref()
                                    .map(procedure_text)
                                    .unwrap_or_default(),
                            )
                            .push_bind(*charge)
                            .push_bind(*paid)
                            .push_bind(l.revenue_code.as_str())
                            .push_bind(l.units.map(|u| u.to_string()).unwrap_or_default())
                            .push_bind(l.service_date.map(format_iso_date).unwrap_or_default())
                            .push_bind(l.line_control_number.as_str())
                            .push_bind(*allowed);
                    });
                    q.build().execute(&mut *conn).await?;
                });
            }
            let adjustments: Vec<_> = chunk
                .iter()
                .flat_map(|(p, f)| {
                    let all = p
                        .adjustments
                        .iter()
                        .chain(p.lines.iter().flat_map(|l| l.adjustments.iter()));
                    all.zip(&f.adjustments)
                        .map(move |(a, c)| (f.payment.0.as_str(), a, c))
                })
                .collect();
            for part in statement_pieces(&adjustments) {
                with_tx!(tx, |conn| {
                    let mut q = sqlx::QueryBuilder::new(
                        "INSERT INTO claim_payment_adjustments (tenant_id, claim_payment_id, \
                         line_number, position, group_code, reason, amount_cents, quantity) ",
                    );
                    q.push_values(part, |mut b, (id, a, (n, position, amount))| {
                        b.push_bind(tenant)
                            .push_bind(*id)
                            .push_bind(*n)
                            .push_bind(*position)
                            .push_bind(a.group.as_str())
                            .push_bind(a.reason.as_str())
                            .push_bind(*amount)
                            .push_bind(a.quantity.map(|q| q.to_string()).unwrap_or_default());
                    });
                    q.build().execute(&mut *conn).await?;
                });
            }
            let mut remarks = Vec::new();
            for (p, f) in chunk {
                let id = f.payment.0.as_str();
                for (j, r) in p.remarks.iter().enumerate() {
                    remarks.push((id, 0, to_i32(j + 1, "remark")?, r.as_str()));
                }
                for (l, (n, ..)) in p.lines.iter().zip(&f.lines) {
                    for (j, r) in l.remarks.iter().enumerate() {
                        remarks.push((id, *n, to_i32(j + 1, "remark")?, r.as_str()));
                    }
                }
            }
            for part in statement_pieces(&remarks) {
                with_tx!(tx, |conn| {
                    let mut q = sqlx::QueryBuilder::new(
                        "INSERT INTO claim_payment_remarks (tenant_id, claim_payment_id, \
                         line_number, position, code) ",
                    );
                    q.push_values(part, |mut b, (id, n, position, code)| {
                        b.push_bind(tenant)
                            .push_bind(*id)
                            .push_bind(*n)
                            .push_bind(*position)
                            .push_bind(*code);
                    });
                    q.build().execute(&mut *conn).await?;
                });
            }
        }
        Ok(())
    }

    /// Moves an ERA's claim payments from one status to another in `tx` (HELD -> PENDING when an
    /// operator releases an unbalanced ERA).
    pub(super) async fn move_payments(
        &self,
        tx: &mut Tx,
        tenant: &str,
        era_id: &str,
        from: PostingStatus,
        to: PostingStatus,
    ) -> Result<u64, EraStoreError> {
        Ok(with_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE claim_payments SET posting_status = $4 \
                 WHERE tenant_id = $1 AND era_id = $2 AND posting_status = $3",
            )
            .bind(tenant)
            .bind(era_id)
            .bind(from.as_str())
            .bind(to.as_str())
            .execute(&mut *conn)
            .await?
            .rows_affected()
        }))
    }
}

fn assemble(
    headers: Vec<PaymentRow>,
    lines: Vec<LineRow>,
    adjustments: Vec<AdjustmentRow>,
    remarks: Vec<RemarkRow>,
) -> Result<Vec<ClaimPayment>, EraStoreError> {
    let mut adj: HashMap<(String, i32), Vec<Adjustment>> = HashMap::new();
    for a in adjustments {
        adj.entry((a.claim_payment_id, a.line_number))
            .or_default()
            .push(Adjustment {
                group: a.group_code,
                reason: a.reason,
                amount: money(a.amount_cents),
                quantity: decimal(&a.quantity, "adjustment quantity")?,
            });
    }
    let mut rem: HashMap<(String, i32), Vec<String>> = HashMap::new();
    for r in remarks {
        rem.entry((r.claim_payment_id, r.line_number))
            .or_default()
            .push(r.code);
    }
    let mut by_payment: HashMap<String, Vec<LinePayment>> = HashMap::new();
    for l in lines {
        let key = (l.claim_payment_id.clone(), l.line_number);
        let line = LinePayment {
            line_number: u32::try_from(l.line_number)
                .map_err(|_| corrupt("line number", l.line_number.to_string()))?,
            procedure: ProcedureCode {
                qualifier: l.procedure_qualifier,
                code: l.procedure_code,
                modifiers: l
                    .modifiers
                    .split(':')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect(),
            },
            submitted_procedure: (!l.submitted_procedure.is_empty())
                .then(|| procedure_from_text(&l.submitted_procedure)),
            charge: money(l.charge_cents),
            paid: money(l.paid_cents),
            revenue_code: l.revenue_code,
            units: decimal(&l.units, "line units")?,
            service_date: optional_date(&l.service_date, "line service date")?,
            line_control_number: l.line_control_number,
            allowed: l.allowed_cents.map(money),
            adjustments: adj.remove(&key).unwrap_or_default(),
            remarks: rem.remove(&key).unwrap_or_default(),
            matched_by: code::<LineMatch>(&l.matched_by, "line match")?,
            claim_line_number: l
                .claim_line_number
                .map(|n| u32::try_from(n).map_err(|_| corrupt("claim line number", n.to_string())))
                .transpose()?,
            claim_line_control_number: l.claim_line_control_number,
        };
        by_payment.entry(l.claim_payment_id).or_default().push(line);
    }
    headers
        .into_iter()
        .map(|h| {
            let key = (h.id.clone(), 0);
            Ok(ClaimPayment {
                id: ClaimPaymentId::parse(&h.id).map_err(|e| corrupt("claim payment id", e))?,
                era_id: EraId::parse(&h.era_id).map_err(|e| corrupt("ERA id", e.to_string()))?,
                position: u32::try_from(h.position)
                    .map_err(|_| corrupt("claim payment position", h.position.to_string()))?,
                payer_id: h.payer_id,
                payment_date: optional_date(&h.payment_date, "payment date")?,
                payment: NewClaimPayment {
                    patient_control_number: h.patient_control_number,
                    status_code: h.status_code,
                    charge: money(h.charge_cents),
                    paid: money(h.paid_cents),
                    patient_responsibility: h.patient_responsibility_cents.map(money),
                    filing_indicator: h.filing_indicator,
                    payer_claim_control_number: h.payer_claim_control_number,
                    facility_type_code: h.facility_type_code,
                    frequency_code: h.frequency_code,
                    statement_from: optional_date(&h.statement_from, "statement from")?,
                    statement_to: optional_date(&h.statement_to, "statement to")?,
                    adjustments: adj.remove(&key).unwrap_or_default(),
                    remarks: rem.remove(&key).unwrap_or_default(),
                    lines: by_payment.remove(&h.id).unwrap_or_default(),
                },
                status: code::<PostingStatus>(&h.posting_status, "posting status")?,
                claim_id: h.claim_id,
                match_note: h.match_note,
                reverses: (!h.reverses_id.is_empty())
                    .then(|| ClaimPaymentId::parse(&h.reverses_id))
                    .transpose()
                    .map_err(|e| corrupt("reversed claim payment id", e))?,
                posted_at: h
                    .posted_at
                    .map(|t| timestamp(t, "claim payment posted_at"))
                    .transpose()?,
            })
        })
        .collect()
}

/// Loads the claim payments whose ids the subquery `$sub` selects (its parameters bound by
/// `$bind` on `$q`) with their children, through `$pool`.
macro_rules! load_payments {
    ($pool:expr, [$($sub:tt)+], |$q:ident| $bind:expr) => {{
        let headers: Vec<PaymentRow> = {
            let $q = sqlx::query_as(concat!(
                "SELECT ", payment_columns!(),
                " FROM claim_payments WHERE tenant_id = $1 AND id IN (", $($sub)+, ") ORDER BY id"
            )).persistent(false);
            $bind.fetch_all($pool).await?
        };
        if headers.is_empty() {
            Vec::new()
        } else {
            let lines: Vec<LineRow> = {
                let $q = sqlx::query_as(concat!(
                    "SELECT claim_payment_id, line_number, procedure_qualifier, procedure_code, \
                     modifiers, submitted_procedure, charge_cents, paid_cents, revenue_code, \
                     units, service_date, line_control_number, allowed_cents, matched_by, \
                     claim_line_number, claim_line_control_number FROM claim_payment_lines \
                     WHERE tenant_id = $1 AND claim_payment_id IN (", $($sub)+,
                    ") ORDER BY claim_payment_id, line_number"
                ));
                $bind.fetch_all($pool).await?
            };
            let adjustments: Vec<AdjustmentRow> = {
                let $q = sqlx::query_as(concat!(
                    "SELECT claim_payment_id, line_number, group_code, reason, amount_cents, \
                     quantity FROM claim_payment_adjustments \
                     WHERE tenant_id = $1 AND claim_payment_id IN (", $($sub)+,
                    ") ORDER BY claim_payment_id, line_number, position"
                )).persistent(false);
                $bind.fetch_all($pool).await?
            };
            let remarks: Vec<RemarkRow> = {
                let $q = sqlx::query_as(concat!(
                    "SELECT claim_payment_id, line_number, code FROM claim_payment_remarks \
                     WHERE tenant_id = $1 AND claim_payment_id IN (", $($sub)+,
                    ") ORDER BY claim_payment_id, line_number, position"
                )).persistent(false);
                $bind.fetch_all($pool).await?
            };
            assemble(headers, lines, adjustments, remarks)?
        }
    }};
}

#[async_trait]
impl PaymentStore for SqlEraStore {
    async fn list_claim_payments(
        &self,
        tenant: &TenantId,
        filter: &ClaimPaymentFilter,
        after: Option<ClaimPaymentId>,
        limit: u32,
    ) -> Result<Vec<ClaimPayment>, EraStoreError> {
        let t = tenant.as_str();
        let era = filter.era_id.map(|e| e.to_string());
        let from = filter.paid_from.map(format_iso_date);
        let to = filter.paid_to.map(format_iso_date);
        let status = filter.status.map(PostingStatus::as_str);
        let after = after.map(|a| a.to_string());
        let limit = i64::from(limit);
        Ok(with_db!(self.db, |pool| {
            load_payments!(pool, [payment_filter!()], |q| q
                .bind(t)
                .bind(era.as_deref())
                .bind(filter.claim_id.as_deref())
                .bind(filter.patient_control_number.as_deref())
                .bind(filter.payer_id.as_deref())
                .bind(from.as_deref())
                .bind(to.as_deref())
                .bind(status)
                .bind(after.as_deref())
                .bind(limit))
        }))
    }

    async fn pending_payments(
        &self,
        tenant: &TenantId,
        era_id: EraId,
        after: Option<ClaimPaymentId>,
        limit: u32,
    ) -> Result<Vec<ClaimPayment>, EraStoreError> {
        let t = tenant.as_str();
        let era = era_id.to_string();
        // Every id is greater than the empty string.
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        let limit = i64::from(limit);
        Ok(with_db!(self.db, |pool| {
            load_payments!(
                pool,
                [
                    "SELECT id FROM claim_payments WHERE tenant_id = $1 AND era_id = $2 \
                     AND id > $3 AND posting_status = 'PENDING' ORDER BY id LIMIT $4"
                ],
                |q| q
                    .bind(t)
                    .bind(era.as_str())
                    .bind(after.as_str())
                    .bind(limit)
            )
        }))
    }

    async fn get_claim_payment(
        &self,
        tenant: &TenantId,
        id: ClaimPaymentId,
    ) -> Result<Option<ClaimPayment>, EraStoreError> {
        let t = tenant.as_str();
        let id = id.to_string();
        let found = with_db!(self.db, |pool| {
            load_payments!(
                pool,
                ["SELECT id FROM claim_payments WHERE tenant_id = $1 AND id = $2"],
                |q| q.bind(t).bind(id.as_str())
            )
        });
        Ok(found.into_iter().next())
    }

    async fn record_postings(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        era_id: EraId,
        from: PostingStatus,
        outcomes: &[PostingOutcome],
    ) -> Result<(), EraStoreError> {
        let t = tenant.as_str();
        let era = era_id.to_string();
        let now = time::now_micros();
        // One UPDATE per batch; a payment moves only if it is still in `from`, so a batch that
        // changes fewer rows than it names lost a race and the whole posting rolls back.
        for part in statement_pieces(outcomes) {
            let rows: Vec<(String, String)> = part
                .iter()
                .map(|o| {
                    (
                        o.id.to_string(),
                        o.reverses.map(|r| r.to_string()).unwrap_or_default(),
                    )
                })
                .collect();
            let changed = with_tx!(tx, |conn| {
                let mut q = sqlx::QueryBuilder::new(
                    "UPDATE claim_payments SET posting_status = v.column2, claim_id = v.column3, \
                     match_note = v.column4, reverses_id = v.column5, \
                     posted_at = CASE WHEN v.column2 = 'POSTED' THEN ",
                );
                q.push_bind(now);
                q.push(" ELSE NULL END FROM (");
                q.push_values(part.iter().zip(&rows), |mut b, (o, (id, reverses))| {
                    b.push_bind(id.as_str())
                        .push_bind(o.status.as_str())
                        .push_bind(o.claim_id.as_str())
                        .push_bind(o.match_note.as_str())
                        .push_bind(reverses.as_str());
                });
                q.push(") AS v WHERE claim_payments.tenant_id = ");
                q.push_bind(t);
                q.push(" AND claim_payments.id = v.column1 AND claim_payments.posting_status = ");
                q.push_bind(from.as_str());
                q.build().execute(&mut *conn).await?.rows_affected()
            });
            if changed != part.len() as u64 {
                return Err(EraStoreError::Conflict(format!(
                    "{} of {} claim payments of ERA {era} are no longer {}",
                    part.len() as u64 - changed,
                    part.len(),
                    from.as_str()
                )));
            }
        }
        let mut lines = Vec::new();
        for o in outcomes
            .iter()
            .filter(|o| o.status == PostingStatus::Posted)
        {
            let id = o.id.to_string();
            for (line, matched_by, claim_line, control) in &o.lines {
                let line =
                    i32::try_from(*line).map_err(|_| corrupt("line number", line.to_string()))?;
                let claim_line = claim_line
                    .map(i32::try_from)
                    .transpose()
                    .map_err(|_| corrupt("claim line number", "too large"))?;
                lines.push((id.clone(), line, *matched_by, claim_line, control.as_str()));
            }
        }
        for part in statement_pieces(&lines) {
            with_tx!(tx, |conn| {
                let mut q = sqlx::QueryBuilder::new(
                    "UPDATE claim_payment_lines SET matched_by = v.column3, \
                     claim_line_number = v.column4, claim_line_control_number = v.column5 FROM (",
                );
                q.push_values(part, |mut b, (id, line, how, claim_line, control)| {
                    b.push_bind(id.as_str())
                        .push_bind(*line)
                        .push_bind(how.as_str())
                        .push_bind(*claim_line)
                        .push_bind(*control);
                });
                q.push(") AS v WHERE claim_payment_lines.tenant_id = ");
                q.push_bind(t);
                q.push(
                    " AND claim_payment_lines.claim_payment_id = v.column1 \
                     AND claim_payment_lines.line_number = v.column2",
                );
                q.build().execute(&mut *conn).await?;
            });
        }
        let posted: Vec<&PostingOutcome> = outcomes
            .iter()
            .filter(|o| o.status == PostingStatus::Posted)
            .collect();
        for part in statement_pieces(&posted) {
            let ids: Vec<String> = part.iter().map(|o| o.id.to_string()).collect();
            with_tx!(tx, |conn| {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO claim_payment_postings (tenant_id, claim_payment_id, era_id, \
                     claim_id, posted_at, method, reason) ",
                );
                q.push_values(part.iter().zip(&ids), |mut b, (o, id)| {
                    b.push_bind(t)
                        .push_bind(id.as_str())
                        .push_bind(era.as_str())
                        .push_bind(o.claim_id.as_str())
                        .push_bind(now)
                        .push_bind(o.method.as_str())
                        .push_bind(o.reason.as_str());
                });
                q.build().execute(&mut *conn).await?;
            });
        }
        Ok(())
    }

    async fn find_reversed(
        &self,
        tenant: &TenantId,
        reversal: &ClaimPayment,
    ) -> Result<Option<ClaimPaymentId>, EraStoreError> {
        let t = tenant.as_str();
        let p = &reversal.payment;
        let opposite = cents(-p.paid, "paid")?;
        let ccn = (!p.payer_claim_control_number.is_empty())
            .then_some(p.payer_claim_control_number.as_str());
        let found: Option<String> = with_db!(self.db, |pool| {
            sqlx::query_scalar(
                "SELECT id FROM claim_payments WHERE tenant_id = $1 \
                 AND patient_control_number = $2 AND posting_status = 'POSTED' \
                 AND status_code <> '22' AND paid_cents = $3 \
                 AND ($4 IS NULL OR payer_claim_control_number = $4) \
                 AND id NOT IN (SELECT reverses_id FROM claim_payments \
                     WHERE tenant_id = $1 AND patient_control_number = $2 AND reverses_id <> '') \
                 ORDER BY id DESC LIMIT 1",
            )
            .bind(t)
            .bind(&p.patient_control_number)
            .bind(opposite)
            .bind(ccn)
            .fetch_optional(pool)
            .await?
        });
        found
            .map(|id| ClaimPaymentId::parse(&id).map_err(|e| corrupt("claim payment id", e)))
            .transpose()
    }
}
