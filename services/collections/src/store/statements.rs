//! Statements in the store: the ledger and service details a statement is built from, and the
//! statements themselves with their lines.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::NaiveDate;
use medbill_domain::{AccountId, JournalEntryId, Money, StatementId, TenantId};
use medbill_storage::rows::{self, statement_pieces, timestamp};
use medbill_storage::{Tx, TxConn, with_db, with_tx};

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

    /// Returns the ids of up to `limit` accounts after `after`, in id order, locked for the rest
    /// of `tx` (a posting to one of them waits): the run of accounts one statement batch covers.
    async fn lock_account_run(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<Vec<AccountId>, StoreError>;

    /// Returns the accounts `first` through `last` (id order) that may get a statement: OPEN or
    /// on a payment plan. Balances and earlier statements are not filtered here (the caller has
    /// each account's latest statement from [`StatementStore::statement_sources`]; a filter on
    /// the date here lets PostgreSQL read every statement of that date per account).
    async fn statement_candidates(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        first: &AccountId,
        last: &AccountId,
    ) -> Result<Vec<Account>, StoreError>;

    /// Returns what the statements of the accounts `first` through `last` (id order) are built
    /// from, in a few queries for the whole run.
    async fn statement_sources(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        first: &AccountId,
        last: &AccountId,
    ) -> Result<StatementSources, StoreError>;

    /// Returns the account's latest statement, and whether one is dated `date` or later.
    async fn previous_statement(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
        date: NaiveDate,
    ) -> Result<(Option<PreviousStatement>, bool), StoreError>;

    /// Stores statements and their lines (multi-row INSERTs) and sets their accounts' statement
    /// dates.
    async fn insert_statements(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        statements: &[Statement],
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

/// What the statements of a run of accounts are built from.
#[derive(Debug, Default)]
pub struct StatementSources {
    /// Each account's journal entries, oldest first (accounts without entries are absent).
    pub ledgers: HashMap<AccountId, Vec<JournalEntry>>,
    /// The service behind each charge entry.
    pub services: HashMap<JournalEntryId, ServiceDetail>,
    /// Each account's latest statement and its date.
    pub previous: HashMap<AccountId, (PreviousStatement, NaiveDate)>,
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

/// The statement columns of one row of a multi-row INSERT.
struct StatementValues<'a> {
    id: String,
    account_id: String,
    statement_date: String,
    due_date: String,
    sequence: i64,
    first_post_discharge: bool,
    /// previous balance, new charges, payments, adjustments, closing balance, amount due,
    /// minimum due, then the five aging buckets.
    cents: [i64; 12],
    dunning_message: &'a str,
    financial_assistance_summary: &'a str,
    contact_text: &'a str,
    last_entry_id: Option<String>,
    created_at: i64,
}

impl<'a> StatementValues<'a> {
    fn of(s: &'a Statement) -> Result<Self, StoreError> {
        Ok(Self {
            id: s.id.to_string(),
            account_id: s.account_id.to_string(),
            statement_date: s.statement_date.to_string(),
            due_date: s.due_date.to_string(),
            sequence: i64::from(s.sequence),
            first_post_discharge: s.first_post_discharge,
            cents: [
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
            ],
            dunning_message: &s.dunning_message,
            financial_assistance_summary: &s.financial_assistance_summary,
            contact_text: &s.contact_text,
            last_entry_id: s.last_entry_id.map(|e| e.to_string()),
            created_at: s.created_at.timestamp_micros(),
        })
    }
}

/// The columns of one statement line of a multi-row INSERT.
struct LineValues<'a> {
    statement_id: &'a str,
    line_no: i64,
    date: String,
    description: &'a str,
    amount: i64,
    claim: Option<String>,
    charges: Option<i64>,
    paid: Option<i64>,
    adjusted: Option<i64>,
}

impl<'a> LineValues<'a> {
    fn of(
        statement_id: &'a str,
        index: usize,
        line: &'a StatementLine,
    ) -> Result<Self, StoreError> {
        let optional = |m: Option<Money>| m.map(|m| cents(m, "lines")).transpose();
        Ok(Self {
            statement_id,
            line_no: i64::try_from(index + 1).unwrap_or(i64::MAX),
            date: line.date.to_string(),
            description: &line.description,
            amount: cents(line.amount, "lines.amount")?,
            claim: line.claim.map(|c| c.to_string()),
            charges: optional(line.charges)?,
            paid: optional(line.insurance_paid)?,
            adjusted: optional(line.insurance_adjustments)?,
        })
    }
}

/// The service behind each charge entry of the accounts `first` through `last` (id order).
///
/// Here and in [`StatementStore::statement_sources`] the account's entries are the outer loop
/// (`CROSS JOIN` keeps them so in SQLite, PostgreSQL reads it as an inner join): with the
/// detail table outer, SQLite reads every row of the tenant once per batch to save a sort.
async fn services_between(
    tx: &mut Tx,
    tenant: &TenantId,
    first: &str,
    last: &str,
) -> Result<HashMap<JournalEntryId, ServiceDetail>, StoreError> {
    type Responsibility = (
        String,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<i64>,
    );
    type Line = (String, String, i64);
    type Bill = (String, String, i64, i64);
    let (heads, lines, bills): (Vec<Responsibility>, Vec<Line>, Vec<Bill>) = with_tx!(tx, |conn| {
        let heads = sqlx::query_as(
            "SELECT r.entry_id, r.service_date, r.patient_control_number, \
             r.total_charge_cents, r.payer_paid_cents FROM journal_entries e \
             CROSS JOIN responsibility_entries r WHERE r.tenant_id = e.tenant_id \
             AND r.entry_id = e.id AND e.tenant_id = $1 AND e.account_id BETWEEN $2 AND $3",
        )
        .bind(tenant.as_str())
        .bind(first)
        .bind(last)
        .fetch_all(&mut *conn)
        .await?;
        let lines = sqlx::query_as(
            "SELECT l.entry_id, l.reason, l.amount_cents FROM journal_entries e \
             CROSS JOIN responsibility_lines l WHERE l.tenant_id = e.tenant_id \
             AND l.entry_id = e.id AND e.tenant_id = $1 AND e.account_id BETWEEN $2 AND $3 \
             ORDER BY l.entry_id, l.line_no",
        )
        .bind(tenant.as_str())
        .bind(first)
        .bind(last)
        .fetch_all(&mut *conn)
        .await?;
        let bills = sqlx::query_as(
            "SELECT b.entry_id, b.service_date, b.gross_cents, b.discount_cents \
             FROM journal_entries e CROSS JOIN self_pay_bills b \
             WHERE b.tenant_id = e.tenant_id AND b.entry_id = e.id \
             AND e.tenant_id = $1 AND e.account_id BETWEEN $2 AND $3",
        )
        .bind(tenant.as_str())
        .bind(first)
        .bind(last)
        .fetch_all(&mut *conn)
        .await?;
        (heads, lines, bills)
    });
    let entry_id = |id: &str| JournalEntryId::parse(id).map_err(|e| corrupt("journal entry id", e));
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

/// The latest statement of each of the accounts `first` through `last` (id order) that has one:
/// its account id, what the next statement needs of it, and its date.
async fn latest_statements_between(
    tx: &mut Tx,
    tenant: &TenantId,
    first: &str,
    last: &str,
) -> Result<Vec<(String, PreviousStatement, NaiveDate)>, StoreError> {
    let found: Vec<(String, i64, i64, Option<String>, String)> = with_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT s.account_id, s.sequence, s.closing_balance_cents, s.last_entry_id, \
             s.statement_date FROM statements s \
             WHERE s.tenant_id = $1 AND s.account_id BETWEEN $2 AND $3 \
             AND s.statement_date = (SELECT MAX(l.statement_date) FROM statements l \
             WHERE l.tenant_id = s.tenant_id AND l.account_id = s.account_id)",
        )
        .bind(tenant.as_str())
        .bind(first)
        .bind(last)
        .fetch_all(&mut *conn)
        .await?
    });
    found
        .into_iter()
        .map(|(account, sequence, closing, last, date)| {
            let previous = PreviousStatement {
                sequence: u32::try_from(sequence).map_err(|e| corrupt("statement sequence", e))?,
                closing_balance: Money::from_minor_units(closing),
                last_entry_id: last
                    .map(|id| {
                        JournalEntryId::parse(&id).map_err(|e| corrupt("journal entry id", e))
                    })
                    .transpose()?,
            };
            Ok((
                account,
                previous,
                rows::date(&date, "statements.statement_date")?,
            ))
        })
        .collect()
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
        let id = account_id.to_string();
        services_between(tx, tenant, &id, &id).await
    }

    async fn lock_account_run(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<Vec<AccountId>, StoreError> {
        // '' sorts before every id: a bound that is never NULL keeps the index range usable in
        // PostgreSQL's generic plans.
        let after = after.map(ToString::to_string).unwrap_or_default();
        let ids: Vec<String> = match tx.conn() {
            // Row locks: a posting to one of these accounts waits for the batch's commit, so
            // the ledger read below is the ledger the statement states.
            TxConn::Postgres(conn) => {
                sqlx::query_scalar(
                    "SELECT id FROM accounts WHERE tenant_id = $1 AND id > $2 \
                     ORDER BY id LIMIT $3 FOR UPDATE",
                )
                .bind(tenant.as_str())
                .bind(&after)
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?
            }
            // The transaction (BEGIN IMMEDIATE) holds SQLite's write lock already.
            TxConn::Sqlite(conn) => {
                sqlx::query_scalar(
                    "SELECT id FROM accounts WHERE tenant_id = $1 AND id > $2 \
                     ORDER BY id LIMIT $3",
                )
                .bind(tenant.as_str())
                .bind(&after)
                .bind(i64::from(limit))
                .fetch_all(&mut *conn)
                .await?
            }
        };
        ids.iter()
            .map(|id| AccountId::parse(id).map_err(|e| corrupt("account id", e)))
            .collect()
    }

    async fn statement_candidates(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        first: &AccountId,
        last: &AccountId,
    ) -> Result<Vec<Account>, StoreError> {
        let rows: Vec<AccountRow> = with_tx!(tx, |conn| {
            sqlx::query_as(concat!(
                select_accounts!(),
                "WHERE a.tenant_id = $1 AND a.id BETWEEN $2 AND $3 \
                 AND a.status IN ('OPEN', 'PAYMENT_PLAN') ORDER BY a.id"
            ))
            .bind(tenant.as_str())
            .bind(first.to_string())
            .bind(last.to_string())
            .fetch_all(&mut *conn)
            .await?
        });
        rows.into_iter().map(AccountRow::into_model).collect()
    }

    async fn statement_sources(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        first: &AccountId,
        last: &AccountId,
    ) -> Result<StatementSources, StoreError> {
        let (first, last) = (first.to_string(), last.to_string());
        let (headers, postings, payers): (Vec<EntryRow>, Vec<PostingRow>, Vec<(String, String)>) =
            with_tx!(tx, |conn| {
                let headers = sqlx::query_as(
                    "SELECT tenant_id, id, account_id, kind, memo, source_ref, posted_at, \
                     idempotency_key FROM journal_entries \
                     WHERE tenant_id = $1 AND account_id BETWEEN $2 AND $3 ORDER BY account_id, id",
                )
                .bind(tenant.as_str())
                .bind(&first)
                .bind(&last)
                .fetch_all(&mut *conn)
                .await?;
                let postings = sqlx::query_as(
                    "SELECT p.entry_id, p.line_no, p.ledger_account, p.amount_cents, p.claim_ref \
                     FROM journal_entries e CROSS JOIN postings p \
                     WHERE p.tenant_id = e.tenant_id AND p.entry_id = e.id \
                     AND e.tenant_id = $1 AND e.account_id BETWEEN $2 AND $3 \
                     ORDER BY p.entry_id, p.line_no",
                )
                .bind(tenant.as_str())
                .bind(&first)
                .bind(&last)
                .fetch_all(&mut *conn)
                .await?;
                let payers = sqlx::query_as(
                    "SELECT entry_id, payer_type FROM payments \
                     WHERE tenant_id = $1 AND account_id BETWEEN $2 AND $3",
                )
                .bind(tenant.as_str())
                .bind(&first)
                .bind(&last)
                .fetch_all(&mut *conn)
                .await?;
                (headers, postings, payers)
            });
        let mut ledgers: HashMap<AccountId, Vec<JournalEntry>> = HashMap::new();
        for entry in super::assemble_entries(headers, postings, payers)? {
            ledgers.entry(entry.account_id).or_default().push(entry);
        }
        let services = services_between(tx, tenant, &first, &last).await?;
        let latest = latest_statements_between(tx, tenant, &first, &last).await?;
        let mut previous = HashMap::with_capacity(latest.len());
        for (account, statement, date) in latest {
            previous.insert(
                AccountId::parse(&account).map_err(|e| corrupt("account id", e))?,
                (statement, date),
            );
        }
        Ok(StatementSources {
            ledgers,
            services,
            previous,
        })
    }

    async fn previous_statement(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account_id: &AccountId,
        date: NaiveDate,
    ) -> Result<(Option<PreviousStatement>, bool), StoreError> {
        let id = account_id.to_string();
        let latest = latest_statements_between(tx, tenant, &id, &id).await?;
        Ok(match latest.into_iter().next() {
            Some((_, previous, latest)) => (Some(previous), latest >= date),
            None => (None, false),
        })
    }

    async fn insert_statements(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        statements: &[Statement],
    ) -> Result<(), StoreError> {
        let heads = statements
            .iter()
            .map(StatementValues::of)
            .collect::<Result<Vec<_>, _>>()?;
        let mut lines = Vec::new();
        for (s, head) in statements.iter().zip(&heads) {
            for (i, line) in s.lines.iter().enumerate() {
                lines.push(LineValues::of(&head.id, i, line)?);
            }
        }
        for piece in statement_pieces(&heads) {
            with_tx!(tx, |conn| {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO statements (tenant_id, id, account_id, statement_date, due_date, \
                     sequence, first_post_discharge, previous_balance_cents, new_charges_cents, \
                     payments_cents, adjustments_cents, closing_balance_cents, amount_due_cents, \
                     minimum_due_cents, aging_0_30_cents, aging_31_60_cents, aging_61_90_cents, \
                     aging_91_120_cents, aging_over_120_cents, dunning_message, \
                     financial_assistance_summary, contact_text, last_entry_id, created_at) ",
                );
                q.push_values(piece, |mut b, v| {
                    b.push_bind(tenant.as_str())
                        .push_bind(v.id.as_str())
                        .push_bind(v.account_id.as_str())
                        .push_bind(v.statement_date.as_str())
                        .push_bind(v.due_date.as_str())
                        .push_bind(v.sequence)
                        .push_bind(v.first_post_discharge);
                    for c in v.cents {
                        b.push_bind(c);
                    }
                    b.push_bind(v.dunning_message)
                        .push_bind(v.financial_assistance_summary)
                        .push_bind(v.contact_text)
                        .push_bind(v.last_entry_id.as_deref())
                        .push_bind(v.created_at);
                });
                q.build().execute(&mut *conn).await?;
            });
        }
        for piece in statement_pieces(&lines) {
            with_tx!(tx, |conn| {
                let mut q = sqlx::QueryBuilder::new(
                    "INSERT INTO statement_lines (tenant_id, statement_id, line_no, line_date, \
                     description, amount_cents, claim_ref, charges_cents, insurance_paid_cents, \
                     insurance_adjustments_cents) ",
                );
                q.push_values(piece, |mut b, l| {
                    b.push_bind(tenant.as_str())
                        .push_bind(l.statement_id)
                        .push_bind(l.line_no)
                        .push_bind(l.date.as_str())
                        .push_bind(l.description)
                        .push_bind(l.amount)
                        .push_bind(l.claim.as_deref())
                        .push_bind(l.charges)
                        .push_bind(l.paid)
                        .push_bind(l.adjusted);
                });
                q.build().execute(&mut *conn).await?;
            });
        }
        // The accounts' statement dates, one UPDATE per piece of accounts stated on a date.
        let mut by_date: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
        for v in &heads {
            by_date
                .entry(v.statement_date.as_str())
                .or_default()
                .push(v.account_id.as_str());
        }
        for (date, accounts) in by_date {
            for piece in statement_pieces(&accounts) {
                // The id range keeps PostgreSQL on the primary key: with no statistics it
                // otherwise reads every account of the tenant for each piece's IN list.
                let low = piece.iter().min().copied().unwrap_or_default();
                let high = piece.iter().max().copied().unwrap_or_default();
                with_tx!(tx, |conn| {
                    let mut q = sqlx::QueryBuilder::new(
                        "UPDATE accounts SET first_statement_date = COALESCE(first_statement_date, ",
                    );
                    q.push_bind(date)
                        .push("), last_statement_date = ")
                        .push_bind(date)
                        .push(" WHERE tenant_id = ")
                        .push_bind(tenant.as_str())
                        .push(" AND id BETWEEN ")
                        .push_bind(low)
                        .push(" AND ")
                        .push_bind(high)
                        .push(" AND id IN (");
                    let mut ids = q.separated(", ");
                    for id in piece {
                        ids.push_bind(*id);
                    }
                    q.push(")");
                    q.build().execute(&mut *conn).await?;
                });
            }
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
