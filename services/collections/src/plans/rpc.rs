//! CreatePaymentPlan, GetPaymentPlan, CancelPaymentPlan, and the plan's part of other RPCs:
//! payments applied to installments, the schedule kept within the balance, the standing
//! evaluated as of a date.

use chrono::NaiveDate;
use medbill_domain::{AccountId, Money, PaymentPlanId, TenantId};
use medbill_proto::collections::v1 as pb;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{date, required_id, timestamp};
use medbill_runtime::idempotent::{Begun, IdempotentCall};
use medbill_storage::Tx;
use tonic::Status;

use super::{
    Frequency, Installment, LivePlan, Plan, PlanStatus, ScheduleError, Terms, apply_payment,
    cut_to, schedule, standing,
};
use crate::model::{Account, AccountStatus};
use crate::posting::{err, memo, positive};
use crate::service::{CollectionsService, to_proto};

fn frequency_from_proto(raw: i32) -> Result<Frequency, ServiceError> {
    match pb::InstallmentFrequency::try_from(raw) {
        Ok(pb::InstallmentFrequency::Unspecified | pb::InstallmentFrequency::Monthly) => {
            Ok(Frequency::Monthly)
        }
        Ok(pb::InstallmentFrequency::Weekly) => Ok(Frequency::Weekly),
        Ok(pb::InstallmentFrequency::Biweekly) => Ok(Frequency::Biweekly),
        Err(_) => Err(ServiceError::invalid_argument(
            "frequency",
            format!("unknown frequency {raw}"),
        )),
    }
}

fn frequency_to_proto(f: Frequency) -> pb::InstallmentFrequency {
    match f {
        Frequency::Weekly => pb::InstallmentFrequency::Weekly,
        Frequency::Biweekly => pb::InstallmentFrequency::Biweekly,
        Frequency::Monthly => pb::InstallmentFrequency::Monthly,
    }
}

fn status_to_proto(s: PlanStatus) -> pb::PaymentPlanStatus {
    match s {
        PlanStatus::Active => pb::PaymentPlanStatus::Active,
        PlanStatus::Delinquent => pb::PaymentPlanStatus::Delinquent,
        PlanStatus::Completed => pb::PaymentPlanStatus::Completed,
        PlanStatus::Defaulted => pb::PaymentPlanStatus::Defaulted,
        PlanStatus::Cancelled => pb::PaymentPlanStatus::Cancelled,
    }
}

/// An installment on the wire, its state as of `as_of` (MISSED once past due and grace).
pub(crate) fn installment_to_proto(
    i: &Installment,
    as_of: NaiveDate,
    grace_days: u32,
) -> pb::Installment {
    let status = if !i.open().is_positive() {
        pb::InstallmentStatus::Paid
    } else if i.due_date + chrono::Days::new(u64::from(grace_days)) < as_of {
        pb::InstallmentStatus::Missed
    } else if i.paid.is_positive() {
        pb::InstallmentStatus::PartiallyPaid
    } else {
        pb::InstallmentStatus::Scheduled
    };
    pb::Installment {
        sequence: i.sequence,
        due_date: i.due_date.to_string(),
        amount: i.amount.to_string(),
        paid_amount: i.paid.to_string(),
        status: status as i32,
    }
}

impl CollectionsService {
    fn plan_to_proto(&self, plan: &Plan) -> pb::PaymentPlan {
        let as_of = self.clock.today();
        let grace = self.config.payment_plans.grace_days;
        pb::PaymentPlan {
            id: plan.id.to_string(),
            account_id: plan.account_id.to_string(),
            status: status_to_proto(plan.status) as i32,
            total_amount: plan.total.to_string(),
            installment_amount: plan.installment_amount.to_string(),
            frequency: frequency_to_proto(plan.frequency) as i32,
            installments: plan
                .installments
                .iter()
                .map(|i| installment_to_proto(i, as_of, grace))
                .collect(),
            remaining_amount: plan.remaining().to_string(),
            created_at: Some(timestamp(plan.created_at)),
            updated_at: Some(timestamp(plan.updated_at)),
            next_due_date: plan
                .next_due()
                .map(|i| i.due_date.to_string())
                .unwrap_or_default(),
            missed_installments: plan.missed(as_of, grace),
            cancel_reason: plan.cancel_reason.clone().unwrap_or_default(),
        }
    }

    /// CreatePaymentPlan: a schedule covering the whole balance owed, on a count or an
    /// installment amount, no installment below the configured minimum.
    pub(crate) async fn create_payment_plan_rpc(
        &self,
        tenant: TenantId,
        req: pb::CreatePaymentPlanRequest,
    ) -> Result<pb::CreatePaymentPlanResponse, Status> {
        use pb::create_payment_plan_request::Terms as WireTerms;
        let call = IdempotentCall::of(&req)?;
        let account_id: AccountId = required_id("account_id", &req.account_id)?;
        let total = if req.total_amount.is_empty() {
            None
        } else {
            Some(positive("total_amount", &req.total_amount)?)
        };
        let terms = match &req.terms {
            Some(WireTerms::InstallmentCount(n)) => Terms::Count(*n),
            Some(WireTerms::InstallmentAmount(a)) => {
                Terms::Amount(positive("installment_amount", a)?)
            }
            None => {
                return Err(err(ServiceError::invalid_argument(
                    "installment_count",
                    "installment_count or installment_amount is required",
                )));
            }
        };
        let frequency = frequency_from_proto(req.frequency)?;
        if req.first_due_date.is_empty() {
            return Err(err(ServiceError::invalid_argument(
                "first_due_date",
                "is required (a date such as 2027-01-15)",
            )));
        }
        let first_due = date("first_due_date", &req.first_due_date)?;
        let today = self.clock.today();
        if first_due < today {
            return Err(err(ServiceError::invalid_argument(
                "first_due_date",
                format!("{first_due} is before today ({today})"),
            )));
        }
        let mut op = match call.begin(self.store.database(), &tenant).await? {
            Begun::Replay(first) => return Ok(first),
            Begun::New(op) => op,
        };
        let account = self
            .store
            .lock_account(op.tx(), &tenant, &account_id)
            .await
            .map_err(err)?;
        if let Some((plan, status)) = account.collection.payment_plan {
            return Err(err(ServiceError::FailedPrecondition(format!(
                "account {account_id} already has the {status} payment plan {plan}: cancel it first"
            ))));
        }
        if !matches!(account.status, AccountStatus::Open) {
            return Err(err(ServiceError::FailedPrecondition(format!(
                "account {account_id} is {}: a plan needs an OPEN account",
                account.status
            ))));
        }
        let owed = account.amount_due();
        if !owed.is_positive() {
            return Err(err(ServiceError::FailedPrecondition(format!(
                "account {account_id} owes nothing (balance {}): there is nothing to plan",
                account.balance
            ))));
        }
        let total = total.unwrap_or(owed);
        if total != owed {
            return Err(err(ServiceError::FailedPrecondition(format!(
                "total_amount {total} does not cover the balance {owed} owed on account {account_id}"
            ))));
        }
        let settings = &self.config.payment_plans;
        let (installment_amount, installments) = schedule(
            total,
            terms,
            frequency,
            first_due,
            settings.minimum_installment,
            settings.max_installments,
        )
        .map_err(|e| {
            let field = match (&e, terms) {
                (
                    ScheduleError::BelowMinimum { .. } | ScheduleError::TooManyInstallments { .. },
                    Terms::Amount(_),
                ) => "installment_amount",
                (ScheduleError::OutOfRange, _) => "first_due_date",
                _ => "installment_count",
            };
            err(ServiceError::invalid_argument(field, e.to_string()))
        })?;
        let now = medbill_storage::rows::timestamp(medbill_storage::time::now_micros(), "now")
            .map_err(err)?;
        let plan = Plan {
            id: PaymentPlanId::new(),
            account_id,
            status: PlanStatus::Active,
            total,
            installment_amount,
            frequency,
            installments,
            cancel_reason: None,
            created_at: now,
            updated_at: now,
        };
        self.store
            .insert_plan(op.tx(), &tenant, &plan)
            .await
            .map_err(err)?;
        let mut account = account;
        account.status = AccountStatus::PaymentPlan;
        account.collection.payment_plan = Some((plan.id, plan.status));
        let response = pb::CreatePaymentPlanResponse {
            plan: Some(self.plan_to_proto(&plan)),
            account: Some(to_proto(&account, None)),
        };
        op.commit(&response).await?;
        Ok(response)
    }

    /// GetPaymentPlan.
    pub(crate) async fn get_payment_plan_rpc(
        &self,
        tenant: TenantId,
        req: pb::GetPaymentPlanRequest,
    ) -> Result<pb::GetPaymentPlanResponse, Status> {
        let id: PaymentPlanId = required_id("id", &req.id)?;
        let plan = self
            .store
            .get_plan(&tenant, &id)
            .await
            .map_err(err)?
            .ok_or_else(|| err(ServiceError::not_found(format!("payment plan {id}"))))?;
        Ok(pb::GetPaymentPlanResponse {
            plan: Some(self.plan_to_proto(&plan)),
        })
    }

    /// CancelPaymentPlan: a live plan only; the account goes back to OPEN.
    pub(crate) async fn cancel_payment_plan_rpc(
        &self,
        tenant: TenantId,
        req: pb::CancelPaymentPlanRequest,
    ) -> Result<pb::CancelPaymentPlanResponse, Status> {
        let call = IdempotentCall::of(&req)?;
        let id: PaymentPlanId = required_id("plan_id", &req.plan_id)?;
        let reason = memo("reason", &req.reason, true)?;
        let mut op = match call.begin(self.store.database(), &tenant).await? {
            Begun::Replay(first) => return Ok(first),
            Begun::New(op) => op,
        };
        let found = self
            .store
            .plan_in(op.tx(), &tenant, &id)
            .await
            .map_err(err)?;
        let mut plan =
            found.ok_or_else(|| err(ServiceError::not_found(format!("payment plan {id}"))))?;
        let account = self
            .store
            .lock_account(op.tx(), &tenant, &plan.account_id)
            .await
            .map_err(err)?;
        if !plan.status.is_live() {
            return Err(err(ServiceError::FailedPrecondition(format!(
                "payment plan {id} is {}: only an ACTIVE or DELINQUENT plan can be cancelled",
                plan.status
            ))));
        }
        plan.status = PlanStatus::Cancelled;
        plan.cancel_reason = Some(reason);
        self.store
            .save_plan(op.tx(), &tenant, &plan)
            .await
            .map_err(err)?;
        let account = self
            .store
            .lock_account(op.tx(), &tenant, &account.id)
            .await
            .map_err(err)?;
        let response = pb::CancelPaymentPlanResponse {
            plan: Some(self.plan_to_proto(&plan)),
            account: Some(to_proto(&account, None)),
        };
        op.commit(&response).await?;
        Ok(response)
    }

    /// Applies a payment of `amount` to the account's live plan (in the payment's transaction);
    /// returns the installments it paid toward and the plan still live after it (a plan paid
    /// off is COMPLETED, and no longer live).
    pub(crate) async fn pay_plan(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account: &Account,
        amount: Money,
    ) -> Result<(Vec<pb::Installment>, LivePlan), Status> {
        let Some((plan_id, _)) = account.collection.payment_plan else {
            return Ok((Vec::new(), None));
        };
        let Some(mut plan) = self
            .store
            .plan_in(tx, tenant, &plan_id)
            .await
            .map_err(err)?
        else {
            return Ok((Vec::new(), None));
        };
        let (touched, _) = apply_payment(&mut plan.installments, amount);
        let live = self
            .settle_plan(tx, tenant, &mut plan, account.amount_due())
            .await?;
        let as_of = self.clock.today();
        let grace = self.config.payment_plans.grace_days;
        let touched = touched
            .iter()
            .map(|i| installment_to_proto(i, as_of, grace))
            .collect();
        Ok((touched, live))
    }

    /// Keeps the account's live plan within what the account owes after a credit that was not
    /// a payment (a write-off, an insurer's reversal); returns the plan still live after it.
    pub(crate) async fn keep_plan_within_balance(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account: &Account,
    ) -> Result<LivePlan, Status> {
        let Some((plan_id, _)) = account.collection.payment_plan else {
            return Ok(None);
        };
        match self
            .store
            .plan_in(tx, tenant, &plan_id)
            .await
            .map_err(err)?
        {
            Some(mut plan) => {
                self.settle_plan(tx, tenant, &mut plan, account.amount_due())
                    .await
            }
            None => Ok(None),
        }
    }

    /// Cuts the schedule to `owed`, re-evaluates the standing as of today and saves the plan;
    /// returns it when it is still live.
    async fn settle_plan(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        plan: &mut Plan,
        owed: Money,
    ) -> Result<LivePlan, Status> {
        cut_to(&mut plan.installments, owed);
        let settings = &self.config.payment_plans;
        plan.status = standing(
            plan,
            self.clock.today(),
            settings.grace_days,
            settings.default_after_missed,
        );
        self.store.save_plan(tx, tenant, plan).await.map_err(err)?;
        Ok(plan.status.is_live().then_some((plan.id, plan.status)))
    }

    /// Re-evaluates the account's live plan as of `as_of` (dunning's first step), saving a
    /// changed status when `save`; returns the plan's status.
    pub(crate) async fn evaluate_plan(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account: &Account,
        as_of: NaiveDate,
        save: bool,
    ) -> Result<Option<PlanStatus>, Status> {
        let Some((plan_id, _)) = account.collection.payment_plan else {
            return Ok(None);
        };
        let Some(mut plan) = self
            .store
            .plan_in(tx, tenant, &plan_id)
            .await
            .map_err(err)?
        else {
            return Ok(None);
        };
        cut_to(&mut plan.installments, account.amount_due());
        let settings = &self.config.payment_plans;
        let status = standing(
            &plan,
            as_of,
            settings.grace_days,
            settings.default_after_missed,
        );
        if save && status != plan.status {
            plan.status = status;
            self.store.save_plan(tx, tenant, &plan).await.map_err(err)?;
            tracing::info!(plan_id = %plan.id, status = %status, "payment plan re-evaluated");
        }
        Ok(Some(status))
    }

    /// What the account's live plan has due by `date` (the statement's minimum due).
    pub(crate) async fn plan_due_by(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account: &Account,
        date: NaiveDate,
    ) -> Result<Option<Money>, Status> {
        let Some((plan_id, _)) = account.collection.payment_plan else {
            return Ok(None);
        };
        Ok(self
            .store
            .plan_in(tx, tenant, &plan_id)
            .await
            .map_err(err)?
            .map(|p| p.due_by(date)))
    }
}
