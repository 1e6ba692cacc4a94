//! GenerateStatements, GetStatement and GetStatementPrintFile.

use medbill_domain::{AccountId, JournalEntryId, Money, StatementId, TenantId};
use medbill_proto::collections::v1 as pb;
use medbill_runtime::ServiceError;
use medbill_runtime::fields::{date, optional_date, required_id, timestamp};
use medbill_runtime::idempotent::{Begun, IdempotentCall};
use medbill_runtime::paging::{PageSize, QueryFingerprint, decode_page_token, split_page};
use medbill_storage::Tx;
use tonic::Status;

use std::collections::HashMap;

use super::{PreviousStatement, ServiceDetail, Statement, StatementInput, build, pdf, print};
use crate::dunning::DunningState;
use crate::model::{Account, AccountStatus, JournalEntry};
use crate::posting::{err, positive};
use crate::service::{CollectionsService, aging_to_proto};

/// The longest payment term a statement may give.
const MAX_DUE_IN_DAYS: u32 = 365;

/// Maps a stored statement to its wire form.
pub(crate) fn statement_to_proto(s: &Statement) -> pb::Statement {
    let optional = |m: Option<Money>| m.map(|m| m.to_string()).unwrap_or_default();
    pb::Statement {
        id: s.id.to_string(),
        account_id: s.account_id.to_string(),
        statement_date: s.statement_date.to_string(),
        due_date: s.due_date.to_string(),
        previous_balance: s.previous_balance.to_string(),
        new_charges: s.new_charges.to_string(),
        payments: s.payments.to_string(),
        adjustments: s.adjustments.to_string(),
        amount_due: s.amount_due.to_string(),
        minimum_due: s.minimum_due.to_string(),
        aging: Some(aging_to_proto(&s.aging)),
        lines: s
            .lines
            .iter()
            .map(|l| pb::StatementLine {
                date: l.date.to_string(),
                description: l.description.clone(),
                amount: l.amount.to_string(),
                claim_id: l.claim.map(|c| c.to_string()).unwrap_or_default(),
                charges: optional(l.charges),
                insurance_paid: optional(l.insurance_paid),
                insurance_adjustments: optional(l.insurance_adjustments),
            })
            .collect(),
        sequence: s.sequence,
        first_post_discharge: s.first_post_discharge,
        dunning_message: s.dunning_message.clone(),
        created_at: Some(timestamp(s.created_at)),
        financial_assistance_summary: s.financial_assistance_summary.clone(),
        patient_ref: s.patient_ref.clone(),
        closing_balance: s.closing_balance.to_string(),
        contact_text: s.contact_text.clone(),
    }
}

/// What a statement cycle was asked for, validated.
pub(crate) struct Cycle {
    pub(crate) date: chrono::NaiveDate,
    pub(crate) minimum: Money,
    pub(crate) due_in_days: u32,
    /// The dunning message to print; `None` prints the message of the account's stage.
    pub(crate) dunning_message: Option<String>,
}

/// The response of a cycle: `listed` statements (all, unless the caller asked for the summary),
/// how many were made and what they ask for.
fn cycle_response(
    listed: &[Statement],
    count: usize,
    total_due: Money,
) -> pb::GenerateStatementsResponse {
    pb::GenerateStatementsResponse {
        statements: listed.iter().map(statement_to_proto).collect(),
        total_due: total_due.to_string(),
        statement_count: u32::try_from(count).unwrap_or(u32::MAX),
    }
}

impl CollectionsService {
    /// GenerateStatements: one statement per account owing at least the minimum, none for an
    /// account that already has one of that date or later (a cycle run again adds nothing).
    pub(crate) async fn generate_statements_rpc(
        &self,
        tenant: TenantId,
        req: pb::GenerateStatementsRequest,
    ) -> Result<pb::GenerateStatementsResponse, Status> {
        let call = IdempotentCall::of(&req)?;
        let today = self.clock.today();
        let statement_date = optional_date("statement_date", &req.statement_date)?.unwrap_or(today);
        if statement_date > today {
            return Err(err(ServiceError::invalid_argument(
                "statement_date",
                format!(
                    "{statement_date} is after today ({today}): a statement cannot be dated ahead"
                ),
            )));
        }
        let only: Vec<AccountId> = req
            .account_ids
            .iter()
            .enumerate()
            .map(|(i, id)| required_id(&format!("account_ids[{i}]"), id))
            .collect::<Result<_, _>>()?;
        let minimum = if req.minimum_balance.is_empty() {
            self.config.statements.minimum_balance
        } else {
            positive("minimum_balance", &req.minimum_balance)?
        };
        let due_in_days = match req.due_in_days {
            0 => self.config.statements.due_in_days,
            d if d > MAX_DUE_IN_DAYS => {
                return Err(err(ServiceError::invalid_argument(
                    "due_in_days",
                    format!("{d} is more than {MAX_DUE_IN_DAYS}"),
                )));
            }
            d => d,
        };
        let cycle = Cycle {
            date: statement_date,
            minimum,
            due_in_days,
            dunning_message: None,
        };
        if only.is_empty() {
            return self
                .generate_for_every_account(&call, &tenant, &cycle, req.omit_statements)
                .await;
        }
        // Named accounts (a handful): one transaction, each account locked as it is stated.
        let mut op = match call.begin(self.store.database(), &tenant).await? {
            Begun::Replay(first) => return Ok(first),
            Begun::New(op) => op,
        };
        let mut statements = Vec::new();
        for id in &only {
            let account = self
                .store
                .lock_account(op.tx(), &tenant, id)
                .await
                .map_err(err)?;
            if let Some(s) = self
                .statement_for(op.tx(), &tenant, account, &cycle)
                .await?
            {
                statements.push(s);
            }
        }
        let count = statements.len();
        let total_due: Money = statements.iter().map(|s| s.amount_due).sum();
        if req.omit_statements {
            statements.clear();
        }
        let response = cycle_response(&statements, count, total_due);
        op.commit(&response).await?;
        tracing::info!(tenant = %tenant, statements = count, date = %statement_date, "statements generated");
        Ok(response)
    }

    /// A cycle over every account, one transaction per run of `statements.batch_accounts` accounts (each
    /// account once: a statement of the cycle's date is never made twice, whether by this call,
    /// a retry of it after an interruption, or another call). The key is recorded with the
    /// response after the last batch; until then a retry carries on where the work stopped, and
    /// its response lists the statements it made.
    async fn generate_for_every_account(
        &self,
        call: &IdempotentCall,
        tenant: &TenantId,
        cycle: &Cycle,
        omit_statements: bool,
    ) -> Result<pb::GenerateStatementsResponse, Status> {
        let db = self.store.database();
        if let Some(first) = call.replayed(db, tenant).await? {
            return Ok(first);
        }
        let (mut listed, mut count, mut total_due) = (Vec::new(), 0_usize, Money::ZERO);
        let batch = self.config.statements.batch_accounts.max(1);
        let mut after: Option<AccountId> = None;
        loop {
            let mut tx = db.begin().await.map_err(err)?;
            let run = self
                .store
                .lock_account_run(&mut tx, tenant, after.as_ref(), batch)
                .await
                .map_err(err)?;
            let (Some(first), Some(last)) = (run.first(), run.last()) else {
                break;
            };
            after = Some(*last);
            let statements = self
                .statements_for_run(&mut tx, tenant, first, last, cycle)
                .await?;
            self.store
                .insert_statements(&mut tx, tenant, &statements)
                .await
                .map_err(err)?;
            tx.commit().await.map_err(err)?;
            count += statements.len();
            total_due += statements.iter().map(|s| s.amount_due).sum::<Money>();
            if !omit_statements {
                listed.extend(statements);
            }
        }
        let response = cycle_response(&listed, count, total_due);
        match call.begin(db, tenant).await? {
            // A concurrent retry finished first; this call made no statement it did not.
            Begun::Replay(first) => return Ok(first),
            Begun::New(op) => op.commit(&response).await?,
        }
        tracing::info!(tenant = %tenant, statements = count, date = %cycle.date, "statements generated");
        Ok(response)
    }

    /// Builds the statements of the cycle for the accounts `first` through `last` (locked in
    /// `tx`) from a few reads for the whole run.
    async fn statements_for_run(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        first: &AccountId,
        last: &AccountId,
        cycle: &Cycle,
    ) -> Result<Vec<Statement>, Status> {
        let owing: Vec<Account> = self
            .store
            .statement_candidates(tx, tenant, first, last)
            .await
            .map_err(err)?
            .into_iter()
            .filter(|a| a.amount_due() >= cycle.minimum)
            .collect();
        if owing.is_empty() {
            return Ok(Vec::new());
        }
        let mut sources = self
            .store
            .statement_sources(tx, tenant, first, last)
            .await
            .map_err(err)?;
        let states = self
            .store
            .dunning_states_between(tx, tenant, first, last)
            .await
            .map_err(err)?;
        let never_dunned = DunningState::default();
        let mut statements = Vec::with_capacity(owing.len());
        for account in owing {
            let previous = sources.previous.remove(&account.id);
            if previous.is_some_and(|(_, date)| date >= cycle.date) {
                continue;
            }
            let entries = sources.ledgers.remove(&account.id).unwrap_or_default();
            let dunning_message = match &cycle.dunning_message {
                Some(message) => message.clone(),
                None => self.stage_message_of(
                    &account,
                    states.get(&account.id).unwrap_or(&never_dunned),
                    cycle.date,
                ),
            };
            let statement = self
                .compose(
                    tx,
                    tenant,
                    &account,
                    &entries,
                    &sources.services,
                    previous.map(|(p, _)| p),
                    dunning_message,
                    cycle,
                )
                .await?;
            statements.push(statement);
        }
        Ok(statements)
    }

    /// Builds and stores the account's statement of the cycle, or `None` when it gets none (not
    /// owing the minimum, closed or at an agency, or already stated on or after the date).
    pub(crate) async fn statement_for(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account: Account,
        cycle: &Cycle,
    ) -> Result<Option<Statement>, Status> {
        if !matches!(
            account.status,
            AccountStatus::Open | AccountStatus::PaymentPlan
        ) || account.amount_due() < cycle.minimum
        {
            return Ok(None);
        }
        let (previous, dated) = self
            .store
            .previous_statement(tx, tenant, &account.id, cycle.date)
            .await
            .map_err(err)?;
        if dated {
            return Ok(None);
        }
        let entries = self
            .store
            .ledger_in(tx, tenant, &account.id)
            .await
            .map_err(err)?;
        let services = self
            .store
            .service_details(tx, tenant, &account.id)
            .await
            .map_err(err)?;
        let dunning_message = match &cycle.dunning_message {
            Some(message) => message.clone(),
            None => self.stage_message(tx, tenant, &account, cycle.date).await?,
        };
        let statement = self
            .compose(
                tx,
                tenant,
                &account,
                &entries,
                &services,
                previous,
                dunning_message,
                cycle,
            )
            .await?;
        self.store
            .insert_statements(tx, tenant, std::slice::from_ref(&statement))
            .await
            .map_err(err)?;
        Ok(Some(statement))
    }

    /// Builds (does not store) the account's statement of the cycle from what was read.
    #[allow(clippy::too_many_arguments)]
    async fn compose(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account: &Account,
        entries: &[JournalEntry],
        services: &HashMap<JournalEntryId, ServiceDetail>,
        previous: Option<PreviousStatement>,
        dunning_message: String,
        cycle: &Cycle,
    ) -> Result<Statement, Status> {
        let texts = &self.config.statements;
        let due_date = cycle.date + chrono::Days::new(u64::from(cycle.due_in_days));
        let installment_due = self.plan_due_by(tx, tenant, account, due_date).await?;
        Ok(build(&StatementInput {
            account_id: account.id,
            patient_ref: &account.patient_ref,
            entries,
            services,
            previous,
            statement_date: cycle.date,
            due_in_days: cycle.due_in_days,
            installment_due,
            dunning_message,
            financial_assistance_summary: &texts.financial_assistance_summary,
            contact_text: &texts.contact_text,
            // Stored in microseconds: the answer equals a later read.
            now: medbill_storage::rows::timestamp(medbill_storage::time::now_micros(), "now")
                .map_err(err)?,
        }))
    }

    /// GetStatement: the stored statement, rendered as PDF on request.
    pub(crate) async fn get_statement_rpc(
        &self,
        tenant: TenantId,
        req: pb::GetStatementRequest,
    ) -> Result<pb::GetStatementResponse, Status> {
        let id: StatementId = required_id("id", &req.id)?;
        let statement = self
            .store
            .get_statement(&tenant, &id)
            .await
            .map_err(err)?
            .ok_or_else(|| err(ServiceError::not_found(format!("statement {id}"))))?;
        let (pdf, pdf_pages) = if req.include_pdf {
            let rendered = pdf::render(&self.config.statements.facility_name, &statement);
            (rendered.bytes, rendered.pages)
        } else {
            (Vec::new(), 0)
        };
        Ok(pb::GetStatementResponse {
            statement: Some(statement_to_proto(&statement)),
            pdf,
            pdf_pages,
        })
    }

    /// GetStatementPrintFile: a page of the cycle's print-vendor file.
    pub(crate) async fn get_statement_print_file_rpc(
        &self,
        tenant: TenantId,
        req: pb::GetStatementPrintFileRequest,
    ) -> Result<pb::GetStatementPrintFileResponse, Status> {
        let size = PageSize::from_i32(req.page_size)?;
        if req.statement_date.is_empty() {
            return Err(err(ServiceError::invalid_argument(
                "statement_date",
                "is required (a date such as 2026-12-01)",
            )));
        }
        let statement_date = date("statement_date", &req.statement_date)?;
        let fingerprint = QueryFingerprint::builder("collections.GetStatementPrintFile")
            .field("tenant", tenant.as_str())
            .field("statement_date", statement_date.to_string())
            .finish();
        let after = decode_page_token(&req.page_token, &fingerprint)?
            .map(|cursor| {
                StatementId::parse(&cursor).map_err(|_| {
                    ServiceError::invalid_argument("page_token", "malformed page token")
                })
            })
            .transpose()?;
        let rows = self
            .store
            .statements_on(&tenant, statement_date, after.as_ref(), size.fetch_limit())
            .await
            .map_err(err)?;
        let (page, next_page_token) = split_page(rows, size, &fingerprint, |s| s.id.to_string());
        let content: String = page.iter().map(print::line).collect();
        Ok(pb::GetStatementPrintFileResponse {
            content: content.into_bytes(),
            statement_count: u32::try_from(page.len()).unwrap_or(u32::MAX),
            next_page_token,
        })
    }
}
