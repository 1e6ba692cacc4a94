//! Payment plans in the store: the plan, its installments, and the account's link to its live
//! plan.

use async_trait::async_trait;
use medbill_domain::{AccountId, Money, PaymentPlanId, TenantId};
use medbill_storage::rows::{self, timestamp};
use medbill_storage::{Tx, time, with_db, with_tx};

use super::{SqlCollectionsStore, StoreError, corrupt};
use crate::model::AccountStatus;
use crate::plans::{Installment, Plan};

/// Stores payment plans.
#[async_trait]
pub trait PlanStore: Send + Sync {
    /// Stores a new plan with its schedule and sets the account's status to PAYMENT_PLAN.
    async fn insert_plan(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        plan: &Plan,
    ) -> Result<(), StoreError>;

    /// Returns the plan read in `tx`.
    async fn plan_in(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        id: &PaymentPlanId,
    ) -> Result<Option<Plan>, StoreError>;

    /// Returns the plan.
    async fn get_plan(
        &self,
        tenant: &TenantId,
        id: &PaymentPlanId,
    ) -> Result<Option<Plan>, StoreError>;

    /// Writes the plan's status, cancel reason and installments; when the plan is no longer
    /// live its account goes back to OPEN.
    async fn save_plan(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        plan: &Plan,
    ) -> Result<(), StoreError>;
}

type PlanRow = (
    String,
    String,
    String,
    i64,
    i64,
    String,
    Option<String>,
    i64,
    i64,
);

const SELECT_PLAN: &str = "SELECT id, account_id, status, total_cents, installment_cents, \
     frequency, cancel_reason, created_at, updated_at FROM payment_plans \
     WHERE tenant_id = $1 AND id = $2";

const SELECT_INSTALLMENTS: &str = "SELECT sequence, due_date, amount_cents, paid_cents \
     FROM plan_installments WHERE tenant_id = $1 AND plan_id = $2 ORDER BY sequence";

fn plan_of(row: PlanRow, installments: Vec<(i64, String, i64, i64)>) -> Result<Plan, StoreError> {
    let (id, account_id, status, total, each, frequency, cancel_reason, created, updated) = row;
    Ok(Plan {
        id: PaymentPlanId::parse(&id).map_err(|e| corrupt("payment plan id", e))?,
        account_id: AccountId::parse(&account_id).map_err(|e| corrupt("account id", e))?,
        status: status
            .parse()
            .map_err(|e| corrupt("payment plan status", e))?,
        total: Money::from_minor_units(total),
        installment_amount: Money::from_minor_units(each),
        frequency: frequency
            .parse()
            .map_err(|e| corrupt("installment frequency", e))?,
        installments: installments
            .into_iter()
            .map(|(sequence, due, amount, paid)| {
                Ok(Installment {
                    sequence: u32::try_from(sequence)
                        .map_err(|e| corrupt("installment sequence", e))?,
                    due_date: rows::date(&due, "plan_installments.due_date")?,
                    amount: Money::from_minor_units(amount),
                    paid: Money::from_minor_units(paid),
                })
            })
            .collect::<Result<_, StoreError>>()?,
        cancel_reason,
        created_at: timestamp(created, "payment_plans.created_at")?,
        updated_at: timestamp(updated, "payment_plans.updated_at")?,
    })
}

#[async_trait]
impl PlanStore for SqlCollectionsStore {
    async fn insert_plan(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        plan: &Plan,
    ) -> Result<(), StoreError> {
        let id = plan.id.to_string();
        let account_id = plan.account_id.to_string();
        let total = rows::cents(plan.total, "total_amount")?;
        let each = rows::cents(plan.installment_amount, "installment_amount")?;
        let now = plan.created_at.timestamp_micros();
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO payment_plans (tenant_id, id, account_id, status, total_cents, \
                 installment_cents, frequency, cancel_reason, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8, $8)",
            )
            .bind(tenant.as_str())
            .bind(&id)
            .bind(&account_id)
            .bind(plan.status.as_str())
            .bind(total)
            .bind(each)
            .bind(plan.frequency.as_str())
            .bind(now)
            .execute(&mut *conn)
            .await?;
            sqlx::query("UPDATE accounts SET status = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_str())
                .bind(&account_id)
                .bind(AccountStatus::PaymentPlan.as_str())
                .execute(&mut *conn)
                .await?;
        });
        for i in &plan.installments {
            let amount = rows::cents(i.amount, "installments.amount")?;
            let paid = rows::cents(i.paid, "installments.paid")?;
            with_tx!(tx, |conn| {
                sqlx::query(
                    "INSERT INTO plan_installments (tenant_id, plan_id, sequence, due_date, \
                     amount_cents, paid_cents) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(tenant.as_str())
                .bind(&id)
                .bind(i64::from(i.sequence))
                .bind(i.due_date.to_string())
                .bind(amount)
                .bind(paid)
                .execute(&mut *conn)
                .await?;
            });
        }
        Ok(())
    }

    async fn plan_in(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        id: &PaymentPlanId,
    ) -> Result<Option<Plan>, StoreError> {
        let id = id.to_string();
        let (row, installments): (Option<PlanRow>, Vec<(i64, String, i64, i64)>) =
            with_tx!(tx, |conn| {
                let row = sqlx::query_as(SELECT_PLAN)
                    .bind(tenant.as_str())
                    .bind(&id)
                    .fetch_optional(&mut *conn)
                    .await?;
                let installments = sqlx::query_as(SELECT_INSTALLMENTS)
                    .bind(tenant.as_str())
                    .bind(&id)
                    .fetch_all(&mut *conn)
                    .await?;
                (row, installments)
            });
        row.map(|r| plan_of(r, installments)).transpose()
    }

    async fn get_plan(
        &self,
        tenant: &TenantId,
        id: &PaymentPlanId,
    ) -> Result<Option<Plan>, StoreError> {
        let id = id.to_string();
        let (row, installments): (Option<PlanRow>, Vec<(i64, String, i64, i64)>) =
            with_db!(self.db, |pool| {
                let row = sqlx::query_as(SELECT_PLAN)
                    .bind(tenant.as_str())
                    .bind(&id)
                    .fetch_optional(pool)
                    .await?;
                let installments = sqlx::query_as(SELECT_INSTALLMENTS)
                    .bind(tenant.as_str())
                    .bind(&id)
                    .fetch_all(pool)
                    .await?;
                (row, installments)
            });
        row.map(|r| plan_of(r, installments)).transpose()
    }

    async fn save_plan(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        plan: &Plan,
    ) -> Result<(), StoreError> {
        let id = plan.id.to_string();
        let account_id = plan.account_id.to_string();
        let now = time::now_micros();
        with_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE payment_plans SET status = $3, cancel_reason = $4, updated_at = $5 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_str())
            .bind(&id)
            .bind(plan.status.as_str())
            .bind(plan.cancel_reason.as_deref())
            .bind(now)
            .execute(&mut *conn)
            .await?;
        });
        for i in &plan.installments {
            let amount = rows::cents(i.amount, "installments.amount")?;
            let paid = rows::cents(i.paid, "installments.paid")?;
            with_tx!(tx, |conn| {
                sqlx::query(
                    "UPDATE plan_installments SET amount_cents = $4, paid_cents = $5 \
                     WHERE tenant_id = $1 AND plan_id = $2 AND sequence = $3",
                )
                .bind(tenant.as_str())
                .bind(&id)
                .bind(i64::from(i.sequence))
                .bind(amount)
                .bind(paid)
                .execute(&mut *conn)
                .await?;
            });
        }
        if !plan.status.is_live() {
            with_tx!(tx, |conn| {
                sqlx::query(
                    "UPDATE accounts SET status = 'OPEN' \
                     WHERE tenant_id = $1 AND id = $2 AND status = 'PAYMENT_PLAN'",
                )
                .bind(tenant.as_str())
                .bind(&account_id)
                .execute(&mut *conn)
                .await?;
            });
        }
        Ok(())
    }
}
