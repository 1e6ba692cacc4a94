//! Persistence of bank deposits and their reconciliation: the [`DepositStore`] trait, implemented
//! by [`SqlEraStore`] with queries written once for PostgreSQL and SQLite.

use std::collections::HashMap;

use async_trait::async_trait;
use medbill_domain::{EraId, TenantId, format_iso_date};
use medbill_storage::rows::{cents, code, date, money, timestamp};
use medbill_storage::{Tx, time, with_db, with_tx};

use super::{EraStoreError, SqlEraStore, corrupt};
use crate::deposits::{
    EraAmounts, NewDeposit, Outcome, Reconciliation, ReconciliationFilter, ReconciliationStatus,
    reconcile,
};

/// Bank deposits and their reconciliation to ERAs.
#[async_trait]
pub trait DepositStore: Send + Sync {
    /// Stores a deposit in `tx` and reconciles its group (trace number and payer as given) with
    /// the group's ERAs; returns the stored reconciliation.
    async fn add_deposit(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        deposit: &NewDeposit,
    ) -> Result<Reconciliation, EraStoreError>;

    /// Reconciles again, in `tx`, every group of deposits with this trace number (after an ERA
    /// with it was stored); returns each group's outcome and deposit ids (none when no deposit
    /// has the trace number).
    async fn refresh_trace(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        trace: &str,
    ) -> Result<Vec<(Outcome, Vec<String>)>, EraStoreError>;

    /// Returns up to `limit` reconciliations matching `filter` after `after`, in id order.
    async fn list_reconciliations(
        &self,
        tenant: &TenantId,
        filter: &ReconciliationFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Reconciliation>, EraStoreError>;
}

#[derive(sqlx::FromRow)]
struct EraAmountRow {
    id: String,
    payment_amount_cents: Option<i64>,
    credit_debit: Option<String>,
    payment_method: Option<String>,
}

#[derive(sqlx::FromRow)]
struct DepositRow {
    id: String,
    trace_number: String,
    amount_cents: i64,
    deposit_date: String,
    payment_method: String,
    payer_id: String,
    bank_account_ref: String,
    description: String,
    status: String,
    era_ids: String,
    era_total_cents: i64,
    claim_payments_total_cents: i64,
    plb_total_cents: i64,
    deposit_total_cents: i64,
    difference_cents: i64,
    message: String,
    created_at: i64,
    updated_at: i64,
}

macro_rules! deposit_columns {
    () => {
        "id, trace_number, amount_cents, deposit_date, payment_method, payer_id, bank_account_ref, \
         description, status, era_ids, era_total_cents, claim_payments_total_cents, \
         plb_total_cents, deposit_total_cents, difference_cents, message, created_at, updated_at"
    };
}

/// The ERAs of a group: `$1` tenant, `$2` trace, `$3` payer ('' = any).
macro_rules! group_eras {
    () => {
        "SELECT id FROM eras WHERE tenant_id = $1 AND trace_number = $2 \
         AND status <> 'REJECTED' AND ($3 = '' OR payer_id = $3)"
    };
}

fn sums(rows: Vec<(String, Option<i64>)>) -> HashMap<String, i64> {
    rows.into_iter()
        .map(|(id, sum)| (id, sum.unwrap_or(0)))
        .collect()
}

impl SqlEraStore {
    /// Works out one group's outcome in `tx` and writes it on its deposits and ERAs; returns it
    /// with the group's deposit ids, or `None` when the group has no deposit.
    async fn reconcile_group(
        &self,
        tx: &mut Tx,
        tenant: &str,
        trace: &str,
        payer: &str,
    ) -> Result<Option<(Outcome, Vec<String>)>, EraStoreError> {
        let (eras, paid, plb, deposits) = with_tx!(tx, |conn| {
            let eras: Vec<EraAmountRow> = sqlx::query_as(concat!(
                "SELECT id, payment_amount_cents, credit_debit, payment_method FROM eras \
                 WHERE tenant_id = $1 AND id IN (",
                group_eras!(),
                ") ORDER BY id"
            ))
            .persistent(false)
            .bind(tenant)
            .bind(trace)
            .bind(payer)
            .fetch_all(&mut *conn)
            .await?;
            let paid: Vec<(String, Option<i64>)> = sqlx::query_as(concat!(
                "SELECT era_id, CAST(SUM(paid_cents) AS BIGINT) FROM claim_payments \
                 WHERE tenant_id = $1 AND era_id IN (",
                group_eras!(),
                ") GROUP BY era_id"
            ))
            .persistent(false)
            .bind(tenant)
            .bind(trace)
            .bind(payer)
            .fetch_all(&mut *conn)
            .await?;
            let plb: Vec<(String, Option<i64>)> = sqlx::query_as(concat!(
                "SELECT era_id, CAST(SUM(amount_cents) AS BIGINT) FROM era_provider_adjustments \
                 WHERE tenant_id = $1 AND era_id IN (",
                group_eras!(),
                ") GROUP BY era_id"
            ))
            .persistent(false)
            .bind(tenant)
            .bind(trace)
            .bind(payer)
            .fetch_all(&mut *conn)
            .await?;
            let deposits: Vec<(String, i64)> = sqlx::query_as(
                "SELECT id, amount_cents FROM deposits \
                 WHERE tenant_id = $1 AND trace_number = $2 AND payer_id = $3 ORDER BY id",
            )
            .bind(tenant)
            .bind(trace)
            .bind(payer)
            .fetch_all(&mut *conn)
            .await?;
            (eras, paid, plb, deposits)
        });
        let Some((last, _)) = deposits.last() else {
            return Ok(None);
        };
        let last = last.clone();
        let (paid, plb) = (sums(paid), sums(plb));
        let amounts = eras
            .iter()
            .map(|e| {
                Ok(EraAmounts {
                    id: EraId::parse(&e.id).map_err(|x| corrupt("ERA id", x.to_string()))?,
                    amount: EraAmounts::moved(
                        e.payment_amount_cents.map(money),
                        e.credit_debit.as_deref(),
                        e.payment_method.as_deref(),
                    ),
                    claim_payments: money(paid.get(&e.id).copied().unwrap_or(0)),
                    provider_adjustments: money(plb.get(&e.id).copied().unwrap_or(0)),
                })
            })
            .collect::<Result<Vec<_>, EraStoreError>>()?;
        let amounts_deposited: Vec<_> = deposits.iter().map(|(_, c)| money(*c)).collect();
        let outcome = reconcile(trace, &amounts, &amounts_deposited);
        let era_ids = outcome
            .era_ids
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let now = time::now_micros();
        with_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE deposits SET status = $4, era_ids = $5, era_total_cents = $6, \
                 claim_payments_total_cents = $7, plb_total_cents = $8, deposit_total_cents = $9, \
                 difference_cents = $10, message = $11, updated_at = $12 \
                 WHERE tenant_id = $1 AND trace_number = $2 AND payer_id = $3",
            )
            .bind(tenant)
            .bind(trace)
            .bind(payer)
            .bind(outcome.status.as_str())
            .bind(era_ids.as_str())
            .bind(cents(outcome.era_total, "era_total")?)
            .bind(cents(outcome.claim_payments_total, "claim_payments_total")?)
            .bind(cents(
                outcome.provider_adjustments_total,
                "provider_adjustments_total",
            )?)
            .bind(cents(outcome.deposit_total, "deposit_total")?)
            .bind(cents(outcome.difference, "difference")?)
            .bind(outcome.message.as_str())
            .bind(now)
            .execute(&mut *conn)
            .await?;
            sqlx::query(concat!(
                "UPDATE eras SET deposit_id = $4, reconciliation_status = $5 \
                 WHERE tenant_id = $1 AND id IN (",
                group_eras!(),
                ")"
            ))
            .persistent(false)
            .bind(tenant)
            .bind(trace)
            .bind(payer)
            .bind(last.as_str())
            .bind(outcome.status.as_str())
            .execute(&mut *conn)
            .await?;
        });
        Ok(Some((
            outcome,
            deposits.into_iter().map(|(id, _)| id).collect(),
        )))
    }
}

fn reconciliation_from_row(
    r: DepositRow,
    deposit_ids: Vec<String>,
) -> Result<Reconciliation, EraStoreError> {
    Ok(Reconciliation {
        deposit: NewDeposit {
            trace_number: r.trace_number,
            amount: money(r.amount_cents),
            deposit_date: date(&r.deposit_date, "deposit date")?,
            payment_method: r.payment_method,
            payer_id: r.payer_id,
            bank_account_ref: r.bank_account_ref,
            description: r.description,
        },
        outcome: Outcome {
            status: code(&r.status, "reconciliation status")?,
            era_ids: r
                .era_ids
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| EraId::parse(s).map_err(|e| corrupt("deposit ERA id", e.to_string())))
                .collect::<Result<_, _>>()?,
            era_total: money(r.era_total_cents),
            claim_payments_total: money(r.claim_payments_total_cents),
            provider_adjustments_total: money(r.plb_total_cents),
            deposit_total: money(r.deposit_total_cents),
            difference: money(r.difference_cents),
            message: r.message,
        },
        id: r.id,
        deposit_ids,
        created_at: timestamp(r.created_at, "deposit created_at")?,
        updated_at: timestamp(r.updated_at, "deposit updated_at")?,
    })
}

#[async_trait]
impl DepositStore for SqlEraStore {
    async fn add_deposit(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        deposit: &NewDeposit,
    ) -> Result<Reconciliation, EraStoreError> {
        let t = tenant.as_str();
        let id = uuid::Uuid::now_v7().hyphenated().to_string();
        let now = time::now_micros();
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO deposits (tenant_id, id, trace_number, amount_cents, deposit_date, \
                 payment_method, payer_id, bank_account_ref, description, status, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'UNMATCHED_DEPOSIT', \
                 $10, $10)",
            )
            .bind(t)
            .bind(id.as_str())
            .bind(deposit.trace_number.as_str())
            .bind(cents(deposit.amount, "deposit.amount")?)
            .bind(format_iso_date(deposit.deposit_date))
            .bind(deposit.payment_method.as_str())
            .bind(deposit.payer_id.as_str())
            .bind(deposit.bank_account_ref.as_str())
            .bind(deposit.description.as_str())
            .bind(now)
            .execute(&mut *conn)
            .await?;
        });
        let (outcome, deposit_ids) = self
            .reconcile_group(tx, t, &deposit.trace_number, &deposit.payer_id)
            .await?
            .ok_or_else(|| corrupt("deposit", "the stored deposit is not in its group"))?;
        let at = timestamp(now, "deposit created_at")?;
        Ok(Reconciliation {
            id,
            deposit: deposit.clone(),
            outcome,
            deposit_ids,
            created_at: at,
            updated_at: at,
        })
    }

    async fn refresh_trace(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        trace: &str,
    ) -> Result<Vec<(Outcome, Vec<String>)>, EraStoreError> {
        let t = tenant.as_str();
        let payers: Vec<String> = with_tx!(tx, |conn| {
            sqlx::query_scalar(
                "SELECT DISTINCT payer_id FROM deposits WHERE tenant_id = $1 AND trace_number = $2",
            )
            .bind(t)
            .bind(trace)
            .fetch_all(&mut *conn)
            .await?
        });
        let mut out = Vec::new();
        for payer in payers {
            out.extend(self.reconcile_group(tx, t, trace, &payer).await?);
        }
        Ok(out)
    }

    async fn list_reconciliations(
        &self,
        tenant: &TenantId,
        filter: &ReconciliationFilter,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Reconciliation>, EraStoreError> {
        let t = tenant.as_str();
        let status = filter.status.map(ReconciliationStatus::as_str);
        let (rows, groups): (Vec<DepositRow>, Vec<(String, String, String)>) =
            with_db!(self.db, |pool| {
                let rows: Vec<DepositRow> = sqlx::query_as(concat!(
                    "SELECT ",
                    deposit_columns!(),
                    " FROM deposits WHERE tenant_id = $1 AND ($2 IS NULL OR status = $2) \
                     AND ($3 IS NULL OR trace_number = $3) AND ($4 IS NULL OR payer_id = $4) \
                     AND ($5 IS NULL OR id > $5) ORDER BY id LIMIT $6"
                ))
                .bind(t)
                .bind(status)
                .bind(filter.trace_number.as_deref())
                .bind(filter.payer_id.as_deref())
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?;
                // The other deposits of the page's groups.
                let mut groups = Vec::new();
                let mut seen = std::collections::HashSet::new();
                for r in &rows {
                    if !seen.insert((r.trace_number.clone(), r.payer_id.clone())) {
                        continue;
                    }
                    let ids: Vec<(String, String, String)> = sqlx::query_as(
                        "SELECT trace_number, payer_id, id FROM deposits WHERE tenant_id = $1 \
                         AND trace_number = $2 AND payer_id = $3 ORDER BY id",
                    )
                    .bind(t)
                    .bind(r.trace_number.as_str())
                    .bind(r.payer_id.as_str())
                    .fetch_all(pool)
                    .await?;
                    groups.extend(ids);
                }
                (rows, groups)
            });
        let mut by_group: HashMap<(String, String), Vec<String>> = HashMap::new();
        for (trace, payer, id) in groups {
            by_group.entry((trace, payer)).or_default().push(id);
        }
        rows.into_iter()
            .map(|r| {
                let ids = by_group
                    .get(&(r.trace_number.clone(), r.payer_id.clone()))
                    .cloned()
                    .unwrap_or_default();
                reconciliation_from_row(r, ids)
            })
            .collect()
    }
}
