//! RunDunning and SetAccountHolds.

use chrono::NaiveDate;
use medbill_domain::{AccountId, IdempotencyKey, TenantId};
use medbill_proto::collections::v1 as pb;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{optional_date, required_id};
use medbill_runtime::idempotent::{Begun, IdempotentCall};
use medbill_storage::Tx;
use tonic::Status;

use super::{DunningState, Step, next_step};
use crate::agency::{GuardInput, guard};
use crate::model::{Account, AccountStatus, EntryKind, LedgerAccount, NewJournalEntry, Posting};
use crate::posting::{err, memo};
use crate::records::allocate;
use crate::service::{CollectionsService, to_proto};
use crate::settings::StageAction;
use crate::statements::rpc::Cycle;

/// Candidate accounts read per query while a run goes.
const CANDIDATE_BATCH: u32 = 500;

fn action_kind(action: StageAction) -> pb::DunningActionKind {
    match action {
        StageAction::Statement => pb::DunningActionKind::Statement,
        StageAction::Reminder => pb::DunningActionKind::Reminder,
        StageAction::FinalNotice => pb::DunningActionKind::FinalNotice,
        StageAction::AgencyEligible => pb::DunningActionKind::AgencyEligible,
    }
}

impl CollectionsService {
    /// The name of the stage the account reached; empty before the first.
    pub(crate) fn stage_name(&self, state: &DunningState) -> String {
        let stages = &self.config.dunning.stages;
        usize::try_from(state.stage)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| stages.get(i))
            .map(|s| s.name.clone())
            .unwrap_or_default()
    }

    /// The first date the 501(r) guard would allow an extraordinary collection action, for the
    /// final notice's text: 120 days after the first statement, 30 after the notice sent `on`.
    fn allowed_date(first_statement: Option<NaiveDate>, on: NaiveDate) -> NaiveDate {
        let notice = on + chrono::Days::new(crate::agency::NOTICE_DAYS);
        first_statement
            .map(|f| f + chrono::Days::new(crate::agency::NOTIFICATION_PERIOD_DAYS))
            .map_or(notice, |f| f.max(notice))
    }

    /// The dunning message of the account's stage for a statement dated `on`.
    pub(crate) async fn stage_message(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account: &Account,
        on: NaiveDate,
    ) -> Result<String, Status> {
        let state = self
            .store
            .dunning_state_in(tx, tenant, &account.id)
            .await
            .map_err(err)?;
        Ok(self.stage_message_of(account, &state, on))
    }

    /// The dunning message of the stage `state` records for the account, as of `on`; empty
    /// before the first stage.
    pub(crate) fn stage_message_of(
        &self,
        account: &Account,
        state: &DunningState,
        on: NaiveDate,
    ) -> String {
        let stages = &self.config.dunning.stages;
        let Some(stage) = usize::try_from(state.stage)
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| stages.get(i))
        else {
            return String::new();
        };
        let allowed = Self::allowed_date(
            account.collection.first_statement_date,
            state.final_notice_date.unwrap_or(on),
        );
        stage
            .message
            .replace("{allowed_date}", &allowed.to_string())
    }

    /// RunDunning: every OPEN account or account on a plan (or the named ones), once per as-of
    /// date.
    pub(crate) async fn run_dunning_rpc(
        &self,
        tenant: TenantId,
        req: pb::RunDunningRequest,
    ) -> Result<pb::RunDunningResponse, Status> {
        let call = IdempotentCall::of(&req)?;
        let today = self.clock.today();
        let as_of = optional_date("as_of_date", &req.as_of_date)?.unwrap_or(today);
        if as_of > today {
            return Err(err(ServiceError::invalid_argument(
                "as_of_date",
                format!("{as_of} is after today ({today}): dunning cannot run ahead"),
            )));
        }
        let only: Vec<AccountId> = req
            .account_ids
            .iter()
            .enumerate()
            .map(|(i, id)| required_id(&format!("account_ids[{i}]"), id))
            .collect::<Result<_, _>>()?;
        let mut op = match call.begin(self.store.database(), &tenant).await? {
            Begun::Replay(first) => return Ok(first),
            Begun::New(op) => op,
        };
        let mut actions = Vec::new();
        if only.is_empty() {
            let mut after: Option<AccountId> = None;
            loop {
                let batch = self
                    .store
                    .dunning_candidates(op.tx(), &tenant, after.as_ref(), CANDIDATE_BATCH)
                    .await
                    .map_err(err)?;
                let Some(last) = batch.last() else { break };
                after = Some(last.id);
                for account in batch {
                    actions.push(
                        self.dun(op.tx(), &tenant, account.id, as_of, req.dry_run)
                            .await?,
                    );
                }
            }
        } else {
            for id in &only {
                actions.push(self.dun(op.tx(), &tenant, *id, as_of, req.dry_run).await?);
            }
        }
        let response = pb::RunDunningResponse {
            accounts_evaluated: u32::try_from(actions.len()).unwrap_or(u32::MAX),
            actions,
        };
        op.commit(&response).await?;
        Ok(response)
    }

    /// Evaluates one account as of `as_of` and performs its step unless `dry_run`.
    async fn dun(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        id: AccountId,
        as_of: NaiveDate,
        dry_run: bool,
    ) -> Result<pb::DunningAction, Status> {
        let mut account = self
            .store
            .lock_account(tx, tenant, &id)
            .await
            .map_err(err)?;
        let mut state = self
            .store
            .dunning_state_in(tx, tenant, &id)
            .await
            .map_err(err)?;
        let days = account
            .collection
            .first_statement_date
            .map(|f| u32::try_from((as_of - f).num_days().max(0)).unwrap_or(u32::MAX))
            .unwrap_or(0);
        let mut action = pb::DunningAction {
            account_id: id.to_string(),
            action: pb::DunningActionKind::None as i32,
            days_past_due: days,
            balance: account.balance.to_string(),
            stage: self.stage_name(&state),
            ..Default::default()
        };
        if !matches!(
            account.status,
            AccountStatus::Open | AccountStatus::PaymentPlan
        ) {
            action.reason = format!("the account is {}", account.status);
            return Ok(action);
        }
        if state.last_run_date == Some(as_of) {
            action.reason = format!("already evaluated as of {as_of}");
            return Ok(action);
        }
        let plan = self
            .evaluate_plan(tx, tenant, &account, as_of, !dry_run)
            .await?;
        if let Some(status) = plan.filter(|s| s.is_live()) {
            action.blocked = true;
            action.blocked_reason = format!("a payment plan holds the account ({status})");
            return self
                .finish(tx, tenant, &id, &mut state, as_of, dry_run, action)
                .await;
        }
        if plan.is_some() && !dry_run {
            // The plan ended (defaulted or paid): read the account as it is now.
            account = self
                .store
                .lock_account(tx, tenant, &id)
                .await
                .map_err(err)?;
        }
        let owed = account.amount_due();
        if !owed.is_positive() {
            action.reason = "nothing is owed".to_owned();
            return self
                .finish(tx, tenant, &id, &mut state, as_of, dry_run, action)
                .await;
        }
        if owed < self.config.dunning.small_balance_threshold {
            action.action = pb::DunningActionKind::SmallBalanceWriteOff as i32;
            action.reason = format!(
                "{owed} is below the small-balance threshold {}",
                self.config.dunning.small_balance_threshold
            );
            if !dry_run {
                self.write_off_small_balance(tx, tenant, &account, as_of)
                    .await?;
                action.balance = "0.00".to_owned();
            }
            return self
                .finish(tx, tenant, &id, &mut state, as_of, dry_run, action)
                .await;
        }
        if state.financial_assistance_pending || state.disputed {
            action.blocked = true;
            action.blocked_reason = if state.financial_assistance_pending {
                "a financial assistance application is pending".to_owned()
            } else {
                "the patient disputes the bill".to_owned()
            };
            return self
                .finish(tx, tenant, &id, &mut state, as_of, dry_run, action)
                .await;
        }
        let stages = &self.config.dunning.stages;
        let index = match next_step(
            stages,
            &state,
            account.collection.first_statement_date,
            as_of,
        ) {
            Step::FirstStatement => 0,
            Step::Advance(i) => i,
            Step::Wait { reason } => {
                action.reason = reason;
                return self
                    .finish(tx, tenant, &id, &mut state, as_of, dry_run, action)
                    .await;
            }
        };
        let Some(stage) = stages.get(index) else {
            action.reason = "no dunning stage is configured".to_owned();
            return self
                .finish(tx, tenant, &id, &mut state, as_of, dry_run, action)
                .await;
        };
        action.action = action_kind(stage.action) as i32;
        action.reason = format!("\"{}\" is due at {} days", stage.name, stage.after_days);
        if stage.action == StageAction::AgencyEligible {
            let result = guard(&GuardInput {
                applies: self.config.section_501r(tenant),
                first_statement: account.collection.first_statement_date,
                final_notice: state.final_notice_date,
                financial_assistance_pending: state.financial_assistance_pending,
                today: as_of,
            });
            if let Some(date) = result.earliest {
                action.reason =
                    format!("eligible for agency placement; IRS 501(r) allows it from {date}");
            }
        } else if !dry_run {
            let message = stage.message.replace(
                "{allowed_date}",
                &Self::allowed_date(account.collection.first_statement_date, as_of).to_string(),
            );
            let cycle = Cycle {
                date: as_of,
                minimum: medbill_domain::Money::from_minor_units(1),
                due_in_days: self.config.statements.due_in_days,
                dunning_message: Some(message),
            };
            match self.statement_for(tx, tenant, account, &cycle).await? {
                Some(statement) => action.statement_id = statement.id.to_string(),
                None => {
                    // The notice is a statement: without one, the stage is not reached.
                    action.action = pb::DunningActionKind::None as i32;
                    action.reason = format!(
                        "\"{}\" is due but the account already has a statement dated {as_of} or later",
                        stage.name
                    );
                    return self
                        .finish(tx, tenant, &id, &mut state, as_of, dry_run, action)
                        .await;
                }
            }
        }
        state.stage = u32::try_from(index + 1).unwrap_or(u32::MAX);
        state.stage_date = Some(as_of);
        if stage.action == StageAction::FinalNotice && state.final_notice_date.is_none() {
            state.final_notice_date = Some(as_of);
        }
        action.stage = stage.name.clone();
        self.finish(tx, tenant, &id, &mut state, as_of, dry_run, action)
            .await
    }

    /// Records that the account was evaluated as of `as_of` (unless a dry run).
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        id: &AccountId,
        state: &mut DunningState,
        as_of: NaiveDate,
        dry_run: bool,
        action: pb::DunningAction,
    ) -> Result<pb::DunningAction, Status> {
        if !dry_run {
            state.last_run_date = Some(as_of);
            self.store
                .save_dunning_state(tx, tenant, id, state)
                .await
                .map_err(err)?;
        }
        Ok(action)
    }

    /// Writes the whole balance off as SMALL_BALANCE; keyed per account and date, as dunning
    /// runs once per date.
    async fn write_off_small_balance(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account: &Account,
        as_of: NaiveDate,
    ) -> Result<(), Status> {
        let amount = account.amount_due();
        let open = self
            .store
            .claim_balances(tx, tenant, &account.id)
            .await
            .map_err(err)?;
        let mut postings = vec![Posting::new(LedgerAccount::SmallBalanceWriteoff, amount)];
        postings.extend(
            allocate(amount, &open, None)
                .into_iter()
                .map(|(c, part)| Posting::on_claim(LedgerAccount::PatientAr, -part, c)),
        );
        let key = IdempotencyKey::parse(&format!("dunning:{as_of}:{}", account.id))
            .map_err(|e| err(ServiceError::Internal(Box::new(e))))?;
        let entry = NewJournalEntry {
            account_id: account.id,
            kind: EntryKind::WriteOff,
            memo: "small balance written off by dunning".to_owned(),
            source_ref: None,
            payer_type: None,
            postings,
        };
        self.store
            .post_journal_entry(tx, tenant, &key, &entry)
            .await
            .map_err(err)?;
        Ok(())
    }

    /// SetAccountHolds.
    pub(crate) async fn set_account_holds_rpc(
        &self,
        tenant: TenantId,
        req: pb::SetAccountHoldsRequest,
    ) -> Result<pb::SetAccountHoldsResponse, Status> {
        let call = IdempotentCall::of(&req)?;
        let id: AccountId = required_id("account_id", &req.account_id)?;
        let reason = memo("reason", &req.reason, true)?;
        let mut op = match call.begin(self.store.database(), &tenant).await? {
            Begun::Replay(first) => return Ok(first),
            Begun::New(op) => op,
        };
        let account = self
            .store
            .lock_account(op.tx(), &tenant, &id)
            .await
            .map_err(err)?;
        let mut state = self
            .store
            .dunning_state_in(op.tx(), &tenant, &id)
            .await
            .map_err(err)?;
        state.financial_assistance_pending = req.financial_assistance_pending;
        state.disputed = req.disputed;
        self.store
            .save_dunning_state(op.tx(), &tenant, &id, &state)
            .await
            .map_err(err)?;
        let response = pb::SetAccountHoldsResponse {
            account: Some(self.with_dunning(to_proto(&account, None), &state)),
        };
        op.commit(&response).await?;
        tracing::info!(account_id = %id, reason_len = reason.len(), "account holds set");
        Ok(response)
    }

    /// Adds the dunning fields to an account's wire form.
    pub(crate) fn with_dunning(
        &self,
        mut account: pb::Account,
        state: &DunningState,
    ) -> pb::Account {
        account.dunning_stage = self.stage_name(state);
        account.financial_assistance_pending = state.financial_assistance_pending;
        account.disputed = state.disputed;
        account
    }
}
