//! Dunning state and agency placements in the store.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::NaiveDate;
use medbill_domain::{AccountId, AgencyPlacementId, Money, TenantId};
use medbill_storage::rows::{self, timestamp};
use medbill_storage::{Tx, time, with_db, with_tx};

use super::{AccountRow, SqlCollectionsStore, StoreError, corrupt, optional_date};
use crate::agency::{Placement, PlacementStatus};
use crate::dunning::DunningState;
use crate::model::Account;

/// Stores dunning state and agency placements.
#[async_trait]
pub trait DunningStore: Send + Sync {
    /// Returns the account's dunning state, read in `tx` (the default when never dunned).
    async fn dunning_state_in(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
    ) -> Result<DunningState, StoreError>;

    /// Returns the dunning states of the accounts `first` through `last` (id order) that have
    /// one, read in `tx` (the others have the default).
    async fn dunning_states_between(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        first: &AccountId,
        last: &AccountId,
    ) -> Result<HashMap<AccountId, DunningState>, StoreError>;

    /// Returns the account's dunning state.
    async fn dunning_state(
        &self,
        tenant: &TenantId,
        account_id: &AccountId,
    ) -> Result<DunningState, StoreError>;

    /// Writes the account's dunning state.
    async fn save_dunning_state(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
        state: &DunningState,
    ) -> Result<(), StoreError>;

    /// Returns up to `limit` accounts after `after` (id order) that dunning evaluates: OPEN or on
    /// a payment plan.
    async fn dunning_candidates(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<Vec<Account>, StoreError>;

    /// Stores a placement and sets its account's status to IN_COLLECTIONS.
    async fn insert_placement(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        placement: &Placement,
    ) -> Result<(), StoreError>;

    /// Returns a placement read in `tx`.
    async fn placement_in(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        id: &AgencyPlacementId,
    ) -> Result<Option<Placement>, StoreError>;

    /// Returns the account's placement at an agency (status PLACED), read in `tx`.
    async fn live_placement(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
    ) -> Result<Option<Placement>, StoreError>;

    /// Writes a placement's status and recall; a placement no longer PLACED sends its account
    /// back to OPEN.
    async fn save_placement(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        placement: &Placement,
    ) -> Result<(), StoreError>;
}

type StateRow = (
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
    bool,
);

const SELECT_STATE: &str = "SELECT stage, stage_date, final_notice_date, last_run_date, \
     financial_assistance_pending, disputed FROM dunning_states \
     WHERE tenant_id = $1 AND account_id = $2";

fn state_of(row: Option<StateRow>) -> Result<DunningState, StoreError> {
    let Some((stage, stage_date, notice, last_run, fa, disputed)) = row else {
        return Ok(DunningState::default());
    };
    Ok(DunningState {
        stage: u32::try_from(stage).map_err(|e| corrupt("dunning stage", e))?,
        stage_date: optional_date(stage_date.as_deref(), "dunning_states.stage_date")?,
        final_notice_date: optional_date(notice.as_deref(), "dunning_states.final_notice_date")?,
        last_run_date: optional_date(last_run.as_deref(), "dunning_states.last_run_date")?,
        financial_assistance_pending: fa,
        disputed,
    })
}

type PlacementRow = (
    String,
    String,
    String,
    i64,
    String,
    bool,
    String,
    Option<String>,
    Option<String>,
    i64,
);

fn placement_of(row: PlacementRow) -> Result<Placement, StoreError> {
    let (id, account, agency, amount, status, credit, placed, recalled, reason, created) = row;
    Ok(Placement {
        id: AgencyPlacementId::parse(&id).map_err(|e| corrupt("placement id", e))?,
        account_id: AccountId::parse(&account).map_err(|e| corrupt("account id", e))?,
        agency_id: agency,
        amount: Money::from_minor_units(amount),
        status: status.parse().map_err(|e| corrupt("placement status", e))?,
        credit_reporting: credit,
        placed_on: rows::date(&placed, "agency_placements.placed_on")?,
        recalled_on: optional_date(recalled.as_deref(), "agency_placements.recalled_on")?,
        recall_reason: reason,
        created_at: timestamp(created, "agency_placements.created_at")?,
    })
}

fn date_text(d: Option<NaiveDate>) -> Option<String> {
    d.map(|d| d.to_string())
}

#[async_trait]
impl DunningStore for SqlCollectionsStore {
    async fn dunning_state_in(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
    ) -> Result<DunningState, StoreError> {
        let row: Option<StateRow> = with_tx!(tx, |conn| {
            sqlx::query_as(SELECT_STATE)
                .bind(tenant.as_str())
                .bind(account_id.to_string())
                .fetch_optional(&mut *conn)
                .await?
        });
        state_of(row)
    }

    async fn dunning_states_between(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        first: &AccountId,
        last: &AccountId,
    ) -> Result<HashMap<AccountId, DunningState>, StoreError> {
        type AccountStateRow = (
            String,
            i64,
            Option<String>,
            Option<String>,
            Option<String>,
            bool,
            bool,
        );
        let found: Vec<AccountStateRow> = with_tx!(tx, |conn| {
            sqlx::query_as(
                "SELECT account_id, stage, stage_date, final_notice_date, last_run_date, \
                 financial_assistance_pending, disputed FROM dunning_states \
                 WHERE tenant_id = $1 AND account_id BETWEEN $2 AND $3",
            )
            .bind(tenant.as_str())
            .bind(first.to_string())
            .bind(last.to_string())
            .fetch_all(&mut *conn)
            .await?
        });
        found
            .into_iter()
            .map(
                |(account, stage, stage_date, notice, last_run, fa, disputed)| {
                    Ok((
                        AccountId::parse(&account).map_err(|e| corrupt("account id", e))?,
                        state_of(Some((stage, stage_date, notice, last_run, fa, disputed)))?,
                    ))
                },
            )
            .collect()
    }

    async fn dunning_state(
        &self,
        tenant: &TenantId,
        account_id: &AccountId,
    ) -> Result<DunningState, StoreError> {
        let row: Option<StateRow> = with_db!(self.db, |pool| {
            sqlx::query_as(SELECT_STATE)
                .bind(tenant.as_str())
                .bind(account_id.to_string())
                .fetch_optional(pool)
                .await?
        });
        state_of(row)
    }

    async fn save_dunning_state(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
        state: &DunningState,
    ) -> Result<(), StoreError> {
        let now = time::now_micros();
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO dunning_states (tenant_id, account_id, stage, stage_date, \
                 final_notice_date, last_run_date, financial_assistance_pending, disputed, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 ON CONFLICT (tenant_id, account_id) DO UPDATE SET stage = excluded.stage, \
                 stage_date = excluded.stage_date, final_notice_date = excluded.final_notice_date, \
                 last_run_date = excluded.last_run_date, \
                 financial_assistance_pending = excluded.financial_assistance_pending, \
                 disputed = excluded.disputed, updated_at = excluded.updated_at",
            )
            .bind(tenant.as_str())
            .bind(account_id.to_string())
            .bind(i64::from(state.stage))
            .bind(date_text(state.stage_date))
            .bind(date_text(state.final_notice_date))
            .bind(date_text(state.last_run_date))
            .bind(state.financial_assistance_pending)
            .bind(state.disputed)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    async fn dunning_candidates(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<Vec<Account>, StoreError> {
        let after = after.map(ToString::to_string);
        let rows: Vec<AccountRow> = with_tx!(tx, |conn| {
            sqlx::query_as(concat!(
                select_accounts!(),
                "WHERE a.tenant_id = $1 AND a.status IN ('OPEN', 'PAYMENT_PLAN') \
                 AND ($2 IS NULL OR a.id > $2) ORDER BY a.id LIMIT $3"
            ))
            .bind(tenant.as_str())
            .bind(after.as_deref())
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?
        });
        rows.into_iter().map(AccountRow::into_model).collect()
    }

    async fn insert_placement(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        p: &Placement,
    ) -> Result<(), StoreError> {
        let amount = rows::cents(p.amount, "amount")?;
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO agency_placements (tenant_id, id, account_id, agency_id, amount_cents, \
                 status, credit_reporting, placed_on, recalled_on, recall_reason, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9)",
            )
            .bind(tenant.as_str())
            .bind(p.id.to_string())
            .bind(p.account_id.to_string())
            .bind(&p.agency_id)
            .bind(amount)
            .bind(p.status.as_str())
            .bind(p.credit_reporting)
            .bind(p.placed_on.to_string())
            .bind(p.created_at.timestamp_micros())
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE accounts SET status = 'IN_COLLECTIONS' WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_str())
            .bind(p.account_id.to_string())
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    async fn placement_in(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        id: &AgencyPlacementId,
    ) -> Result<Option<Placement>, StoreError> {
        let row: Option<PlacementRow> = with_tx!(tx, |conn| {
            sqlx::query_as(concat!(
                "SELECT id, account_id, agency_id, amount_cents, status, credit_reporting, \
                 placed_on, recalled_on, recall_reason, created_at FROM agency_placements ",
                "WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(tenant.as_str())
            .bind(id.to_string())
            .fetch_optional(&mut *conn)
            .await?
        });
        row.map(placement_of).transpose()
    }

    async fn live_placement(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
    ) -> Result<Option<Placement>, StoreError> {
        let row: Option<PlacementRow> = with_tx!(tx, |conn| {
            sqlx::query_as(concat!(
                "SELECT id, account_id, agency_id, amount_cents, status, credit_reporting, \
                 placed_on, recalled_on, recall_reason, created_at FROM agency_placements ",
                "WHERE tenant_id = $1 AND account_id = $2 AND status = 'PLACED'"
            ))
            .bind(tenant.as_str())
            .bind(account_id.to_string())
            .fetch_optional(&mut *conn)
            .await?
        });
        row.map(placement_of).transpose()
    }

    async fn save_placement(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        p: &Placement,
    ) -> Result<(), StoreError> {
        with_tx!(tx, |conn| {
            sqlx::query(
                "UPDATE agency_placements SET status = $3, recalled_on = $4, recall_reason = $5 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_str())
            .bind(p.id.to_string())
            .bind(p.status.as_str())
            .bind(date_text(p.recalled_on))
            .bind(p.recall_reason.as_deref())
            .execute(&mut *conn)
            .await?;
        });
        if p.status != PlacementStatus::Placed {
            with_tx!(tx, |conn| {
                sqlx::query(
                    "UPDATE accounts SET status = 'OPEN' \
                     WHERE tenant_id = $1 AND id = $2 AND status = 'IN_COLLECTIONS'",
                )
                .bind(tenant.as_str())
                .bind(p.account_id.to_string())
                .execute(&mut *conn)
                .await?;
            });
        }
        Ok(())
    }
}
