//! PlaceWithAgency and RecallPlacement.

use medbill_domain::{AccountId, AgencyPlacementId, TenantId};
use medbill_proto::collections::v1 as pb;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{IDENTIFIER_LEN, required_id, required_text, timestamp};
use medbill_runtime::idempotent::{Begun, IdempotentCall};
use tonic::Status;

use super::{GuardInput, GuardResult, Placement, PlacementStatus, guard, placement_file};
use crate::model::AccountStatus;
use crate::posting::{err, memo};
use crate::service::{CollectionsService, to_proto};
use crate::settings::StageAction;

fn guard_to_proto(applies: bool, input: &GuardInput, result: &GuardResult) -> pb::Section501rCheck {
    let date = |d: Option<chrono::NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
    pb::Section501rCheck {
        applies,
        allowed: result.allowed,
        first_statement_date: date(input.first_statement),
        days_since_first_statement: result.days_since_first_statement,
        earliest_allowed_date: date(result.earliest),
        final_notice_date: date(input.final_notice),
        // Screening is offered on every statement (the financial assistance summary); an
        // application in progress is the hold that blocks.
        financial_assistance_screened: input.first_statement.is_some(),
        violations: result.violations.clone(),
    }
}

fn placement_to_proto(p: &Placement, guard: Option<pb::Section501rCheck>) -> pb::AgencyPlacement {
    pb::AgencyPlacement {
        id: p.id.to_string(),
        account_id: p.account_id.to_string(),
        agency_id: p.agency_id.clone(),
        amount: p.amount.to_string(),
        status: match p.status {
            PlacementStatus::Placed => pb::PlacementStatus::Placed,
            PlacementStatus::Recalled => pb::PlacementStatus::Recalled,
            PlacementStatus::Closed => pb::PlacementStatus::Closed,
        } as i32,
        credit_reporting: p.credit_reporting,
        guard,
        placed_at: Some(timestamp(p.created_at)),
        placed_on: p.placed_on.to_string(),
        recalled_on: p.recalled_on.map(|d| d.to_string()).unwrap_or_default(),
        recall_reason: p.recall_reason.clone().unwrap_or_default(),
    }
}

impl CollectionsService {
    /// PlaceWithAgency: only an account that dunning made eligible, owing something, not on a
    /// plan, not disputed, and only when the 501(r) guard allows it today.
    pub(crate) async fn place_with_agency_rpc(
        &self,
        tenant: TenantId,
        req: pb::PlaceWithAgencyRequest,
    ) -> Result<pb::PlaceWithAgencyResponse, Status> {
        let call = IdempotentCall::of(&req)?;
        let id: AccountId = required_id("account_id", &req.account_id)?;
        let agency_id = required_text("agency_id", &req.agency_id, IDENTIFIER_LEN)?;
        if !self.config.agencies.iter().any(|a| a.id == agency_id) {
            return Err(err(ServiceError::invalid_argument(
                "agency_id",
                format!("{agency_id:?} is not a configured agency (collections.agencies)"),
            )));
        }
        let today = self.clock.today();
        let mut op = match call.begin(self.store.database(), &tenant).await? {
            Begun::Replay(first) => return Ok(first),
            Begun::New(op) => op,
        };
        let account = self
            .store
            .lock_account(op.tx(), &tenant, &id)
            .await
            .map_err(err)?;
        let refuse = |why: String| err(ServiceError::FailedPrecondition(why));
        match account.status {
            AccountStatus::Open => {}
            AccountStatus::PaymentPlan => {
                return Err(refuse(format!(
                    "account {id} is on a payment plan: it cannot be placed"
                )));
            }
            other => {
                return Err(refuse(format!(
                    "account {id} is {other}: it cannot be placed"
                )));
            }
        }
        let owed = account.amount_due();
        if !owed.is_positive() {
            return Err(refuse(format!(
                "account {id} owes nothing (balance {})",
                account.balance
            )));
        }
        let state = self
            .store
            .dunning_state_in(op.tx(), &tenant, &id)
            .await
            .map_err(err)?;
        if state.disputed {
            return Err(refuse(format!(
                "account {id} is disputed: it cannot be placed"
            )));
        }
        let applies = self.config.section_501r(&tenant);
        let input = GuardInput {
            applies,
            first_statement: account.collection.first_statement_date,
            final_notice: state.final_notice_date,
            financial_assistance_pending: state.financial_assistance_pending,
            today,
        };
        let result = guard(&input);
        if !result.allowed {
            let from = result
                .earliest
                .map_or_else(|| "a date not known yet".to_owned(), |d| d.to_string());
            return Err(refuse(format!(
                "placement of account {id} refused: {}; placement is allowed from {from}",
                result.violations.join("; ")
            )));
        }
        let stages = &self.config.dunning.stages;
        let eligible_stage = stages
            .iter()
            .position(|s| s.action == StageAction::AgencyEligible);
        if let Some(eligible) = eligible_stage
            && usize::try_from(state.stage).unwrap_or(0) <= eligible
        {
            return Err(refuse(format!(
                "account {id} is not eligible for placement: it is at dunning stage {:?}, \
                 placement needs {:?}",
                self.stage_name(&state),
                stages[eligible].name
            )));
        }
        let now = medbill_storage::rows::timestamp(medbill_storage::time::now_micros(), "now")
            .map_err(err)?;
        let placement = Placement {
            id: AgencyPlacementId::new(),
            account_id: id,
            agency_id,
            amount: owed,
            status: PlacementStatus::Placed,
            credit_reporting: req.credit_reporting,
            placed_on: today,
            recalled_on: None,
            recall_reason: None,
            created_at: now,
        };
        self.store
            .insert_placement(op.tx(), &tenant, &placement)
            .await
            .map_err(err)?;
        let entries = self
            .store
            .ledger_in(op.tx(), &tenant, &id)
            .await
            .map_err(err)?;
        let oldest_days = entries
            .iter()
            .filter(|e| e.balance_change().is_positive())
            .map(|e| (today - e.posted_at.date_naive()).num_days())
            .max()
            .map_or(0, |d| u32::try_from(d.max(0)).unwrap_or(u32::MAX));
        let file = placement_file(
            &placement,
            &account.patient_ref,
            account.guarantor_ref.as_deref().unwrap_or_default(),
            account.collection.first_statement_date,
            state.final_notice_date,
            oldest_days,
        );
        let account = self
            .store
            .lock_account(op.tx(), &tenant, &id)
            .await
            .map_err(err)?;
        let check = guard_to_proto(applies, &input, &result);
        let response = pb::PlaceWithAgencyResponse {
            placed: true,
            placement: Some(placement_to_proto(&placement, Some(check.clone()))),
            guard: Some(check),
            account: Some(self.with_dunning(to_proto(&account, None), &state)),
            placement_file: file.into_bytes(),
        };
        op.commit(&response).await?;
        tracing::info!(account_id = %id, placement_id = %placement.id, "account placed with agency");
        Ok(response)
    }

    /// RecallPlacement: a PLACED placement only; the account goes back to OPEN.
    pub(crate) async fn recall_placement_rpc(
        &self,
        tenant: TenantId,
        req: pb::RecallPlacementRequest,
    ) -> Result<pb::RecallPlacementResponse, Status> {
        let call = IdempotentCall::of(&req)?;
        let id: AgencyPlacementId = required_id("placement_id", &req.placement_id)?;
        let reason = memo("reason", &req.reason, true)?;
        let mut op = match call.begin(self.store.database(), &tenant).await? {
            Begun::Replay(first) => return Ok(first),
            Begun::New(op) => op,
        };
        let found = self
            .store
            .placement_in(op.tx(), &tenant, &id)
            .await
            .map_err(err)?;
        let mut placement =
            found.ok_or_else(|| err(ServiceError::not_found(format!("placement {id}"))))?;
        self.store
            .lock_account(op.tx(), &tenant, &placement.account_id)
            .await
            .map_err(err)?;
        if placement.status != PlacementStatus::Placed {
            return Err(err(ServiceError::FailedPrecondition(format!(
                "placement {id} is {}: only a PLACED placement can be recalled",
                placement.status
            ))));
        }
        placement.status = PlacementStatus::Recalled;
        placement.recalled_on = Some(self.clock.today());
        placement.recall_reason = Some(reason);
        self.store
            .save_placement(op.tx(), &tenant, &placement)
            .await
            .map_err(err)?;
        let account = self
            .store
            .lock_account(op.tx(), &tenant, &placement.account_id)
            .await
            .map_err(err)?;
        let response = pb::RecallPlacementResponse {
            placement: Some(placement_to_proto(&placement, None)),
            account: Some(to_proto(&account, None)),
        };
        op.commit(&response).await?;
        Ok(response)
    }
}
