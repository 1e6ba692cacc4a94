//! Statements in the store: the ledger and service details a statement is built from, and the
//! statements themselves with their lines.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::NaiveDate;
use medbill_domain::{AccountId, JournalEntryId, Money, StatementId, TenantId};
use medbill_storage::rows::{self, timestamp};
use medbill_storage::{Tx, with_db, with_tx};

use super::{
    AccountRow, EntryRow, PostingRow, SELECT_ACCOUNT_ENTRIES, SELECT_ACCOUNT_PAYERS,
    SELECT_ACCOUNT_POSTINGS, SqlCollectionsStore, StoreError, claim_ref, corrupt,
};
use crate::aging::Aging;
use crate::model::{Account, JournalEntry};
use crate::statements::{PreviousStatement, ServiceDetail, Statement, StatementLine};

/// Stores statements and reads what they are built from.
#[async_trait]
pub trait StatementStore: Send + Sync {
    /// Returns the account's journal entries, oldest first, read in `tx`.
    async fn ledger_in(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
    ) -> Result<Vec<JournalEntry>, StoreError>;

    /// Returns the service behind each charge entry of the account (patient responsibility with
    /// its PR lines, self-pay bills), by entry.
    async fn service_details(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
    ) -> Result<HashMap<JournalEntryId, ServiceDetail>, StoreError>;

    /// Returns up to `limit` accounts after `after` (id order) that may get a statement dated
    /// `date`: OPEN or on a payment plan, none yet of that date. Balances are not filtered here.
    async fn statement_candidates(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        date: NaiveDate,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<Vec<Account>, StoreError>;

    /// Returns the account's latest statement, and whether one is dated `date`.
    async fn previous_statement(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
        date: NaiveDate,
    ) -> Result<(Option<PreviousStatement>, bool), StoreError>;

    /// Stores a statement and its lines and sets the account's statement dates.
    async fn insert_statement(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        statement: &Statement,
    ) -> Result<(), StoreError>;

    /// Returns one statement with its lines.
    async fn get_statement(
        &self,
        tenant: &TenantId,
        id: &StatementId,
    ) -> Result<Option<Statement>, StoreError>;

    /// Returns up to `limit` statements dated `date` after `after`, in id order, with lines.
    async fn statements_on(
        &self,
        tenant: &TenantId,
        date: NaiveDate,
        after: Option<&StatementId>,
        limit: u32,
    ) -> Result<Vec<Statement>, StoreError>;
}

/// Expands to the statement columns with the account's patient ref; callers add the WHERE clause.
macro_rules! select_statements {
    () => {
        "SELECT s.id, s.account_id, a.patient_ref, s.statement_date, s.due_date, s.sequence, \
         s.first_post_discharge, s.previous_balance_cents, s.new_charges_cents, s.payments_cents, \
         s.adjustments_cents, s.closing_balance_cents, s.amount_due_cents, s.minimum_due_cents, \
         s.aging_0_30_cents, s.aging_31_60_cents, s.aging_61_90_cents, s.aging_91_120_cents, \
         s.aging_over_120_cents, s.dunning_message, s.financial_assistance_summary, \
         s.contact_text, s.last_entry_id, s.created_at FROM statements s \
         JOIN accounts a ON a.tenant_id = s.tenant_id AND a.id = s.account_id "
    };
}

const SELECT_LINES: &str = "SELECT statement_id, line_no, line_date, description, amount_cents, \
     claim_ref, charges_cents, insurance_paid_cents, insurance_adjustments_cents \
     FROM statement_lines WHERE tenant_id = $1 AND statement_id = $2 ORDER BY line_no";

#[derive(sqlx::FromRow)]
struct StatementRow {
    id: String,
    account_id: String,
    patient_ref: String,
    statement_date: String,
    due_date: String,
    sequence: i64,
    first_post_discharge: bool,
    previous_balance_cents: i64,
    new_charges_cents: i64,
    payments_cents: i64,
    adjustments_cents: i64,
    closing_balance_cents: i64,
    amount_due_cents: i64,
    minimum_due_cents: i64,
    aging_0_30_cents: i64,
    aging_31_60_cents: i64,
    aging_61_90_cents: i64,
    aging_91_120_cents: i64,
    aging_over_120_cents: i64,
    dunning_message: String,
    financial_assistance_summary: String,
    contact_text: String,
    last_entry_id: Option<String>,
    created_at: i64,
}

#[derive(sqlx::FromRow)]
struct LineRow {
    #[allow(dead_code)]
    statement_id: String,
    #[allow(dead_code)]
    line_no: i64,
    line_date: String,
    description: String,
    amount_cents: i64,
    claim_ref: Option<String>,
    charges_cents: Option<i64>,
    insurance_paid_cents: Option<i64>,
    insurance_adjustments_cents: Option<i64>,
}

impl StatementRow {
    fn into_model(self, lines: Vec<LineRow>) -> Result<Statement, StoreError> {
        let m = Money::from_minor_units;
        Ok(Statement {
            id: StatementId::parse(&self.id).map_err(|e| corrupt("statement id", e))?,
            account_id: AccountId::parse(&self.account_id).map_err(|e| corrupt("account id", e))?,
            patient_ref: self.patient_ref,
            statement_date: rows::date(&self.statement_date, "statements.statement_date")?,
            due_date: rows::date(&self.due_date, "statements.due_date")?,
            sequence: u32::try_from(self.sequence).map_err(|e| corrupt("statement sequence", e))?,
            first_post_discharge: self.first_post_discharge,
            previous_balance: m(self.previous_balance_cents),
            new_charges: m(self.new_charges_cents),
            payments: m(self.payments_cents),
            adjustments: m(self.adjustments_cents),
            closing_balance: m(self.closing_balance_cents),
            amount_due: m(self.amount_due_cents),
            minimum_due: m(self.minimum_due_cents),
            aging: Aging {
                days_0_30: m(self.aging_0_30_cents),
                days_31_60: m(self.aging_31_60_cents),
                days_61_90: m(self.aging_61_90_cents),
                days_91_120: m(self.aging_91_120_cents),
                days_over_120: m(self.aging_over_120_cents),
            },
            lines: lines
                .into_iter()
                .map(|l| {
                    Ok(StatementLine {
                        date: rows::date(&l.line_date, "statement_lines.line_date")?,
                        description: l.description,
                        amount: m(l.amount_cents),
                        claim: claim_ref(l.claim_ref.as_deref())?,
                        charges: l.charges_cents.map(m),
                        insurance_paid: l.insurance_paid_cents.map(m),
                        insurance_adjustments: l.insurance_adjustments_cents.map(m),
                    })
                })
                .collect::<Result<_, StoreError>>()?,
            dunning_message: self.dunning_message,
            financial_assistance_summary: self.financial_assistance_summary,
            contact_text: self.contact_text,
            last_entry_id: self
                .last_entry_id
                .map(|id| JournalEntryId::parse(&id).map_err(|e| corrupt("journal entry id", e)))
                .transpose()?,
            created_at: timestamp(self.created_at, "statements.created_at")?,
        })
    }
}

fn cents(m: Money, what: &str) -> Result<i64, StoreError> {
    Ok(rows::cents(m, what)?)
}

#[async_trait]
impl StatementStore for SqlCollectionsStore {
    async fn ledger_in(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let account_id = account_id.to_string();
        let (headers, postings, payers): (Vec<EntryRow>, Vec<PostingRow>, Vec<(String, String)>) =
            with_tx!(tx, |conn| {
                let headers = sqlx::query_as(SELECT_ACCOUNT_ENTRIES)
                    .bind(tenant.as_str())
                    .bind(&account_id)
                    .fetch_all(&mut *conn)
                    .await?;
                let postings = sqlx::query_as(SELECT_ACCOUNT_POSTINGS)
                    .bind(tenant.as_str())
                    .bind(&account_id)
                    .fetch_all(&mut *conn)
                    .await?;
                let payers = sqlx::query_as(SELECT_ACCOUNT_PAYERS)
                    .bind(tenant.as_str())
                    .bind(&account_id)
                    .fetch_all(&mut *conn)
                    .await?;
                (headers, postings, payers)
            });
        super::assemble_entries(headers, postings, payers)
    }

    async fn service_details(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
    ) -> Result<HashMap<JournalEntryId, ServiceDetail>, StoreError> {
        type Responsibility = (
            String,
            Option<String>,
            Option<String>,
            Option<i64>,
            Option<i64>,
        );
        let account_id = account_id.to_string();
        let (heads, lines, bills): (
            Vec<Responsibility>,
            Vec<(String, String, i64)>,
            Vec<(String, String, i64, i64)>,
        ) = with_tx!(tx, |conn| {
            let heads = sqlx::query_as(
                "SELECT r.entry_id, r.service_date, r.patient_control_number, \
                 r.total_charge_cents, r.payer_paid_cents FROM responsibility_entries r \
                 JOIN journal_entries e ON e.tenant_id = r.tenant_id AND e.id = r.entry_id \
                 WHERE e.tenant_id = $1 AND e.account_id = $2",
            )
            .bind(tenant.as_str())
            .bind(&account_id)
            .fetch_all(&mut *conn)
            .await?;
            let lines = sqlx::query_as(
                "SELECT l.entry_id, l.reason, l.amount_cents FROM responsibility_lines l \
                 JOIN journal_entries e ON e.tenant_id = l.tenant_id AND e.id = l.entry_id \
                 WHERE e.tenant_id = $1 AND e.account_id = $2 ORDER BY l.entry_id, l.line_no",
            )
            .bind(tenant.as_str())
            .bind(&account_id)
            .fetch_all(&mut *conn)
            .await?;
            let bills = sqlx::query_as(
                "SELECT b.entry_id, b.service_date, b.gross_cents, b.discount_cents \
                 FROM self_pay_bills b \
                 JOIN journal_entries e ON e.tenant_id = b.tenant_id AND e.id = b.entry_id \
                 WHERE e.tenant_id = $1 AND e.account_id = $2",
            )
            .bind(tenant.as_str())
            .bind(&account_id)
            .fetch_all(&mut *conn)
            .await?;
            (heads, lines, bills)
        });
        let entry_id =
            |id: &str| JournalEntryId::parse(id).map_err(|e| corrupt("journal entry id", e));
        let mut details = HashMap::new();
        for (id, service_date, pcn, charge, paid) in heads {
            details.insert(
                entry_id(&id)?,
                ServiceDetail {
                    service_date: service_date
                        .map(|d| rows::date(&d, "responsibility_entries.service_date"))
                        .transpose()?,
                    patient_control_number: pcn,
                    charges: charge.map(Money::from_minor_units),
                    insurance_paid: paid.map(Money::from_minor_units),
                    self_pay_discount: None,
                    responsibility: Vec::new(),
                },
            );
        }
        for (id, reason, amount) in lines {
            if let Some(d) = details.get_mut(&entry_id(&id)?) {
                d.responsibility
                    .push((reason, Money::from_minor_units(amount)));
            }
        }
        for (id, service_date, gross, discount) in bills {
            details.insert(
                entry_id(&id)?,
                ServiceDetail {
                    service_date: Some(rows::date(&service_date, "self_pay_bills.service_date")?),
                    patient_control_number: None,
                    charges: Some(Money::from_minor_units(gross)),
                    insurance_paid: Some(Money::ZERO),
                    self_pay_discount: Some(Money::from_minor_units(discount)),
                    responsibility: Vec::new(),
                },
            );
        }
        Ok(details)
    }

    async fn statement_candidates(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        date: NaiveDate,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<Vec<Account>, StoreError> {
        let after = after.map(ToString::to_string);
        let rows: Vec<AccountRow> = with_tx!(tx, |conn| {
            sqlx::query_as(concat!(
                select_accounts!(),
                "WHERE a.tenant_id = $1 AND a.status IN ('OPEN', 'PAYMENT_PLAN') \
                 AND ($2 IS NULL OR a.id > $2) AND NOT EXISTS (SELECT 1 FROM statements s \
                 WHERE s.tenant_id = a.tenant_id AND s.account_id = a.id \
                 AND s.statement_date = $3) ORDER BY a.id LIMIT $4"
            ))
            .bind(tenant.as_str())
            .bind(after.as_deref())
            .bind(date.to_string())
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?
        });
        rows.into_iter().map(AccountRow::into_model).collect()
    }

    async fn previous_statement(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
        date: NaiveDate,
    ) -> Result<(Option<PreviousStatement>, bool), StoreError> {
        let rows: Vec<(i64, i64, Option<String>, String)> = with_tx!(tx, |conn| {
            sqlx::query_as(
                "SELECT sequence, closing_balance_cents, last_entry_id, statement_date \
                 FROM statements WHERE tenant_id = $1 AND account_id = $2 \
                 ORDER BY statement_date DESC LIMIT 1",
            )
            .bind(tenant.as_str())
            .bind(account_id.to_string())
            .fetch_all(&mut *conn)
            .await?
        });
        let Some((sequence, closing, last, latest)) = rows.into_iter().next() else {
            return Ok((None, false));
        };
        let previous = PreviousStatement {
            sequence: u32::try_from(sequence).map_err(|e| corrupt("statement sequence", e))?,
            closing_balance: Money::from_minor_units(closing),
            last_entry_id: last
                .map(|id| JournalEntryId::parse(&id).map_err(|e| corrupt("journal entry id", e)))
                .transpose()?,
        };
        let dated = rows::date(&latest, "statements.statement_date")? >= date;
        Ok((Some(previous), dated))
    }

    async fn insert_statement(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        s: &Statement,
    ) -> Result<(), StoreError> {
        let id = s.id.to_string();
        let account_id = s.account_id.to_string();
        let created = s.created_at.timestamp_micros();
        let values = [
            cents(s.previous_balance, "previous_balance")?,
            cents(s.new_charges, "new_charges")?,
            cents(s.payments, "payments")?,
            cents(s.adjustments, "adjustments")?,
            cents(s.closing_balance, "closing_balance")?,
            cents(s.amount_due, "amount_due")?,
            cents(s.minimum_due, "minimum_due")?,
            cents(s.aging.days_0_30, "aging")?,
            cents(s.aging.days_31_60, "aging")?,
            cents(s.aging.days_61_90, "aging")?,
            cents(s.aging.days_91_120, "aging")?,
            cents(s.aging.days_over_120, "aging")?,
        ];
        with_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO statements (tenant_id, id, account_id, statement_date, due_date, \
                 sequence, first_post_discharge, previous_balance_cents, new_charges_cents, \
                 payments_cents, adjustments_cents, closing_balance_cents, amount_due_cents, \
                 minimum_due_cents, aging_0_30_cents, aging_31_60_cents, aging_61_90_cents, \
                 aging_91_120_cents, aging_over_120_cents, dunning_message, \
                 financial_assistance_summary, contact_text, last_entry_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
                 $17, $18, $19, $20, $21, $22, $23, $24)",
            )
            .bind(tenant.as_str())
            .bind(&id)
            .bind(&account_id)
            .bind(s.statement_date.to_string())
            .bind(s.due_date.to_string())
            .bind(i64::from(s.sequence))
            .bind(s.first_post_discharge)
            .bind(values[0])
            .bind(values[1])
            .bind(values[2])
            .bind(values[3])
            .bind(values[4])
            .bind(values[5])
            .bind(values[6])
            .bind(values[7])
            .bind(values[8])
            .bind(values[9])
            .bind(values[10])
            .bind(values[11])
            .bind(&s.dunning_message)
            .bind(&s.financial_assistance_summary)
            .bind(&s.contact_text)
            .bind(s.last_entry_id.map(|e| e.to_string()))
            .bind(created)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE accounts SET first_statement_date = COALESCE(first_statement_date, $3), \
                 last_statement_date = $3 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant.as_str())
            .bind(&account_id)
            .bind(s.statement_date.to_string())
            .execute(&mut *conn)
            .await?;
        });
        for (i, line) in s.lines.iter().enumerate() {
            let line_no = i64::try_from(i + 1).unwrap_or(i64::MAX);
            let amount = cents(line.amount, "lines.amount")?;
            let optional = |m: Option<Money>| m.map(|m| cents(m, "lines")).transpose();
            let (charges, paid, adjusted) = (
                optional(line.charges)?,
                optional(line.insurance_paid)?,
                optional(line.insurance_adjustments)?,
            );
            with_tx!(tx, |conn| {
                sqlx::query(
                    "INSERT INTO statement_lines (tenant_id, statement_id, line_no, line_date, \
                     description, amount_cents, claim_ref, charges_cents, insurance_paid_cents, \
                     insurance_adjustments_cents) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(tenant.as_str())
                .bind(&id)
                .bind(line_no)
                .bind(line.date.to_string())
                .bind(&line.description)
                .bind(amount)
                .bind(line.claim.map(|c| c.to_string()))
                .bind(charges)
                .bind(paid)
                .bind(adjusted)
                .execute(&mut *conn)
                .await?;
            });
        }
        Ok(())
    }

    async fn get_statement(
        &self,
        tenant: &TenantId,
        id: &StatementId,
    ) -> Result<Option<Statement>, StoreError> {
        let id = id.to_string();
        let (row, lines): (Option<StatementRow>, Vec<LineRow>) = with_db!(self.db, |pool| {
            let row = sqlx::query_as(concat!(
                select_statements!(),
                "WHERE s.tenant_id = $1 AND s.id = $2"
            ))
            .bind(tenant.as_str())
            .bind(&id)
            .fetch_optional(pool)
            .await?;
            let lines = sqlx::query_as(SELECT_LINES)
                .bind(tenant.as_str())
                .bind(&id)
                .fetch_all(pool)
                .await?;
            (row, lines)
        });
        row.map(|r| r.into_model(lines)).transpose()
    }

    async fn statements_on(
        &self,
        tenant: &TenantId,
        date: NaiveDate,
        after: Option<&StatementId>,
        limit: u32,
    ) -> Result<Vec<Statement>, StoreError> {
        let after = after.map(ToString::to_string);
        let rows: Vec<StatementRow> = with_db!(self.db, |pool| {
            sqlx::query_as(concat!(
                select_statements!(),
                "WHERE s.tenant_id = $1 AND s.statement_date = $2 \
                 AND ($3 IS NULL OR s.id > $3) ORDER BY s.id LIMIT $4"
            ))
            .bind(tenant.as_str())
            .bind(date.to_string())
            .bind(after.as_deref())
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        });
        let mut statements = Vec::with_capacity(rows.len());
        for row in rows {
            let lines: Vec<LineRow> = with_db!(self.db, |pool| {
                sqlx::query_as(SELECT_LINES)
                    .bind(tenant.as_str())
                    .bind(&row.id)
                    .fetch_all(pool)
                    .await?
            });
            statements.push(row.into_model(lines)?);
        }
        Ok(statements)
    }
}
