//! Patient statements: what an account's statement says (built here from the ledger, pure), its
//! PDF rendering ([`pdf`]), its print-vendor line ([`print`]) and the RPCs ([`rpc`]:
//! GenerateStatements, GetStatement, GetStatementPrintFile).
//!
//! A statement lists the entries posted since the previous statement (services with their
//! charges, what insurance paid and adjusted and the patient's share; payments; adjustments),
//! the balance by age, the amount due and its due date, the plan installment when the account is
//! on a plan, the dunning message of the account's stage and the financial assistance summary
//! IRS 501(r) requires on every statement.

pub mod pdf;
pub mod print;
pub(crate) mod rpc;

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use medbill_domain::{AccountId, ClaimId, JournalEntryId, Money, StatementId};

use crate::aging::{self, Aging};
use crate::model::{EntryKind, JournalEntry, LedgerAccount, PayerType};

/// One activity line of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    /// Date of service for charges, else the posting date.
    pub date: NaiveDate,
    /// What the line is, in plain words (no PHI).
    pub description: String,
    /// Change of the patient balance (positive = owed more).
    pub amount: Money,
    /// The claim it belongs to, when one.
    pub claim: Option<ClaimId>,
    /// Charges billed for the service, when known.
    pub charges: Option<Money>,
    /// What insurance paid, when known.
    pub insurance_paid: Option<Money>,
    /// What insurance (or the self-pay discount) took off, when known.
    pub insurance_adjustments: Option<Money>,
}

/// A patient statement as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The statement id (UUID v7).
    pub id: StatementId,
    /// The account billed.
    pub account_id: AccountId,
    /// The EHR's opaque patient id (the mail house merges the address by it).
    pub patient_ref: String,
    /// The statement date (the cycle).
    pub statement_date: NaiveDate,
    /// When payment is due.
    pub due_date: NaiveDate,
    /// 1-based position among the account's statements.
    pub sequence: u32,
    /// True for the account's first statement (starts the 501(r) clock).
    pub first_post_discharge: bool,
    /// Balance on the previous statement.
    pub previous_balance: Money,
    /// Patient responsibility and self-pay charges since then.
    pub new_charges: Money,
    /// Payments (negative) and refunds (positive) since then.
    pub payments: Money,
    /// Write-offs, insurance reversals and manual adjustments since then.
    pub adjustments: Money,
    /// Balance at the statement date (negative = credit).
    pub closing_balance: Money,
    /// What is owed: a positive closing balance, else zero.
    pub amount_due: Money,
    /// What is due now: the plan installment on a plan, else the amount due.
    pub minimum_due: Money,
    /// The balance by age at the statement date.
    pub aging: Aging,
    /// The activity since the previous statement.
    pub lines: Vec<StatementLine>,
    /// The dunning message of the account's stage; empty when none.
    pub dunning_message: String,
    /// The plain-language financial assistance summary.
    pub financial_assistance_summary: String,
    /// How to pay and whom to call.
    pub contact_text: String,
    /// The last journal entry covered; the next statement starts after it.
    pub last_entry_id: Option<JournalEntryId>,
    /// When it was generated.
    pub created_at: DateTime<Utc>,
}

/// What the ledger alone does not say about a charge entry: the service it bills.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceDetail {
    /// Date of service.
    pub service_date: Option<NaiveDate>,
    /// The claim's patient control number (CLP01).
    pub patient_control_number: Option<String>,
    /// Charges billed (CLP03, or a self-pay bill's gross charges).
    pub charges: Option<Money>,
    /// What the payer paid (CLP04; zero for a self-pay bill).
    pub insurance_paid: Option<Money>,
    /// The self-pay discount of a self-pay bill.
    pub self_pay_discount: Option<Money>,
    /// The PR lines: CARC and amount.
    pub responsibility: Vec<(String, Money)>,
}

/// The statement before this one, as far as the next one needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviousStatement {
    /// Its sequence.
    pub sequence: u32,
    /// Its closing balance.
    pub closing_balance: Money,
    /// The last entry it covered.
    pub last_entry_id: Option<JournalEntryId>,
}

/// Everything a statement is built from.
#[derive(Debug)]
pub struct StatementInput<'a> {
    /// The account billed.
    pub account_id: AccountId,
    /// Its patient ref.
    pub patient_ref: &'a str,
    /// Every journal entry of the account, in posting order.
    pub entries: &'a [JournalEntry],
    /// The service behind each charge entry.
    pub services: &'a HashMap<JournalEntryId, ServiceDetail>,
    /// The account's previous statement, when there is one.
    pub previous: Option<PreviousStatement>,
    /// The statement date.
    pub statement_date: NaiveDate,
    /// Days until due.
    pub due_in_days: u32,
    /// The plan installment due, when the account is on a plan.
    pub installment_due: Option<Money>,
    /// The dunning message of the account's stage.
    pub dunning_message: String,
    /// The financial assistance summary.
    pub financial_assistance_summary: &'a str,
    /// How to pay and whom to call.
    pub contact_text: &'a str,
    /// When it is generated.
    pub now: DateTime<Utc>,
}

/// Builds the statement of an account from its ledger.
pub fn build(input: &StatementInput<'_>) -> Statement {
    let after = input.previous.and_then(|p| p.last_entry_id);
    let mut lines = Vec::new();
    let (mut new_charges, mut payments, mut adjustments) = (Money::ZERO, Money::ZERO, Money::ZERO);
    let mut last_entry_id = after;
    for entry in input.entries {
        if after.is_some_and(|a| entry.id <= a)
            || entry.posted_at.date_naive() > input.statement_date
        {
            continue;
        }
        last_entry_id = Some(entry.id);
        let change = entry.balance_change();
        match entry.kind {
            EntryKind::PatientResponsibility | EntryKind::SelfPayCharge => new_charges += change,
            EntryKind::Payment | EntryKind::Refund => payments += change,
            EntryKind::WriteOff | EntryKind::Reversal | EntryKind::Adjustment => {
                adjustments += change;
            }
        }
        if !change.is_zero() {
            lines.push(line(entry, input.services.get(&entry.id)));
        }
    }
    let previous_balance = input.previous.map_or(Money::ZERO, |p| p.closing_balance);
    let closing_balance = previous_balance + new_charges + payments + adjustments;
    let amount_due = positive_part(closing_balance);
    let minimum_due = match input.installment_due {
        Some(installment) if installment < amount_due => installment,
        _ => amount_due,
    };
    Statement {
        id: StatementId::new(),
        account_id: input.account_id,
        patient_ref: input.patient_ref.to_owned(),
        statement_date: input.statement_date,
        due_date: input.statement_date + chrono::Days::new(u64::from(input.due_in_days)),
        sequence: input.previous.map_or(1, |p| p.sequence + 1),
        first_post_discharge: input.previous.is_none(),
        previous_balance,
        new_charges,
        payments,
        adjustments,
        closing_balance,
        amount_due,
        minimum_due,
        aging: aging::age(input.entries, input.statement_date),
        lines,
        dunning_message: input.dunning_message.clone(),
        financial_assistance_summary: input.financial_assistance_summary.to_owned(),
        contact_text: input.contact_text.to_owned(),
        last_entry_id,
        created_at: input.now,
    }
}

fn positive_part(m: Money) -> Money {
    if m.is_positive() { m } else { Money::ZERO }
}

/// The claim a charge entry is on (its first `PATIENT_AR` posting's claim).
fn entry_claim(entry: &JournalEntry) -> Option<ClaimId> {
    entry
        .postings
        .iter()
        .find(|p| p.ledger_account == LedgerAccount::PatientAr)
        .and_then(|p| p.claim)
}

/// Plain words for the CARCs of patient responsibility.
fn reason_words(carc: &str) -> String {
    match carc {
        "1" => "deductible".to_owned(),
        "2" => "coinsurance".to_owned(),
        "3" => "copay".to_owned(),
        "96" | "204" => "not covered by your plan".to_owned(),
        other => format!("patient share (reason {other})"),
    }
}

fn payer_words(payer: Option<PayerType>) -> &'static str {
    match payer {
        None | Some(PayerType::Patient | PayerType::Guarantor) => "Payment received - thank you",
        Some(PayerType::AutoInsurer) => "Payment from an auto insurer",
        Some(PayerType::LiabilityInsurer) => "Payment from a liability insurer",
        Some(PayerType::WorkersCompensation) => "Payment from workers' compensation",
        Some(PayerType::Attorney) => "Payment from an attorney",
        Some(PayerType::CharityFund) => "Payment from a charity fund",
        Some(PayerType::CollectionAgency) => "Payment collected by the collection agency",
    }
}

fn line(entry: &JournalEntry, service: Option<&ServiceDetail>) -> StatementLine {
    let posted = entry.posted_at.date_naive();
    let amount = entry.balance_change();
    let claim = entry_claim(entry);
    let mut out = StatementLine {
        date: posted,
        description: String::new(),
        amount,
        claim,
        charges: None,
        insurance_paid: None,
        insurance_adjustments: None,
    };
    match entry.kind {
        EntryKind::PatientResponsibility | EntryKind::SelfPayCharge => {
            let service = service.cloned().unwrap_or_default();
            out.date = service.service_date.unwrap_or(posted);
            let reference = service
                .patient_control_number
                .as_deref()
                .map(|pcn| format!(" (claim {pcn})"))
                .unwrap_or_default();
            if entry.kind == EntryKind::SelfPayCharge {
                out.description = format!("Services, self-pay{reference}");
                out.charges = service.charges;
                out.insurance_paid = Some(Money::ZERO);
                out.insurance_adjustments = service.self_pay_discount;
            } else {
                let share = service
                    .responsibility
                    .iter()
                    .map(|(carc, a)| format!("{} {a}", reason_words(carc)))
                    .collect::<Vec<_>>()
                    .join(", ");
                out.description = if share.is_empty() {
                    format!("Services, your share after insurance{reference}")
                } else {
                    format!("Services, your share after insurance{reference}: {share}")
                };
                out.charges = service.charges;
                out.insurance_paid = service.insurance_paid;
                if let (Some(c), Some(p)) = (service.charges, service.insurance_paid) {
                    out.insurance_adjustments = Some(c - p - amount);
                }
            }
        }
        EntryKind::Reversal => out.description = "Insurance corrected its decision".to_owned(),
        EntryKind::Payment => out.description = payer_words(entry.payer_type).to_owned(),
        EntryKind::Refund => out.description = "Refund of your credit balance".to_owned(),
        EntryKind::WriteOff => {
            let account = entry
                .postings
                .iter()
                .find(|p| p.ledger_account != LedgerAccount::PatientAr)
                .map(|p| p.ledger_account);
            out.description = match account {
                Some(LedgerAccount::CharityCare) => "Financial assistance applied",
                Some(LedgerAccount::PromptPayDiscount) => "Prompt-pay discount",
                Some(LedgerAccount::SmallBalanceWriteoff) => "Small balance adjustment",
                _ => "Balance adjustment",
            }
            .to_owned();
        }
        EntryKind::Adjustment => out.description = "Account adjustment".to_owned(),
    }
    out
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use medbill_domain::TenantId;

    use super::*;
    use crate::model::Posting;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn entry(day: u32, kind: EntryKind, ar: &str, other: LedgerAccount) -> JournalEntry {
        JournalEntry {
            id: JournalEntryId::new(),
            tenant_id: TenantId::parse("t").unwrap_or_else(|e| panic!("{e}")),
            account_id: AccountId::new(),
            kind,
            memo: String::new(),
            source_ref: None,
            posted_at: Utc
                .with_ymd_and_hms(2026, 11, day, 12, 0, 0)
                .single()
                .unwrap_or_else(|| panic!("date")),
            idempotency_key: None,
            payer_type: None,
            postings: vec![
                Posting::new(LedgerAccount::PatientAr, m(ar)),
                Posting::new(other, Money::ZERO - m(ar)),
            ],
        }
    }

    fn input<'a>(
        entries: &'a [JournalEntry],
        services: &'a HashMap<JournalEntryId, ServiceDetail>,
        previous: Option<PreviousStatement>,
        day: u32,
    ) -> StatementInput<'a> {
        StatementInput {
            account_id: AccountId::new(),
            patient_ref: "p-1",
            entries,
            services,
            previous,
            statement_date: NaiveDate::from_ymd_opt(2026, 11, day).unwrap_or_default(),
            due_in_days: 30,
            installment_due: None,
            dunning_message: String::new(),
            financial_assistance_summary: "help",
            contact_text: "call",
            now: Utc::now(),
        }
    }

    #[test]
    fn a_statement_covers_what_was_posted_since_the_previous_one() {
        let pr = entry(
            2,
            EntryKind::PatientResponsibility,
            "80.00",
            LedgerAccount::InsuranceAr,
        );
        let paid = entry(5, EntryKind::Payment, "-20.00", LedgerAccount::Cash);
        let later = entry(
            20,
            EntryKind::PatientResponsibility,
            "15.00",
            LedgerAccount::InsuranceAr,
        );
        let mut services = HashMap::new();
        services.insert(
            pr.id,
            ServiceDetail {
                service_date: NaiveDate::from_ymd_opt(2026, 10, 28),
                patient_control_number: Some("PCN1".into()),
                charges: Some(m("300.00")),
                insurance_paid: Some(m("150.00")),
                self_pay_discount: None,
                responsibility: vec![("1".into(), m("50.00")), ("3".into(), m("30.00"))],
            },
        );
        let entries = [pr.clone(), paid.clone(), later.clone()];
        let first = build(&input(&entries, &services, None, 10));
        assert_eq!(first.sequence, 1);
        assert!(first.first_post_discharge);
        assert_eq!(first.new_charges, m("80.00"));
        assert_eq!(first.payments, m("-20.00"));
        assert_eq!(first.amount_due, m("60.00"));
        assert_eq!(
            first.last_entry_id,
            Some(paid.id),
            "the later entry is after the date"
        );
        assert_eq!(
            first.due_date,
            NaiveDate::from_ymd_opt(2026, 12, 10).unwrap_or_default()
        );
        let service = &first.lines[0];
        assert_eq!(
            service.insurance_adjustments,
            Some(m("70.00")),
            "300 - 150 - 80"
        );
        assert!(
            service
                .description
                .contains("deductible 50.00, copay 30.00"),
            "{service:?}"
        );
        assert_eq!(first.aging.total(), first.amount_due);

        let previous = PreviousStatement {
            sequence: first.sequence,
            closing_balance: first.closing_balance,
            last_entry_id: first.last_entry_id,
        };
        let second = build(&input(&entries, &services, Some(previous), 25));
        assert_eq!(second.sequence, 2);
        assert!(!second.first_post_discharge);
        assert_eq!(second.previous_balance, m("60.00"));
        assert_eq!(second.lines.len(), 1);
        assert_eq!(second.amount_due, m("75.00"));
    }

    #[test]
    fn a_credit_balance_owes_nothing_and_a_plan_installment_is_the_minimum() {
        let services = HashMap::new();
        let entries = [
            entry(
                2,
                EntryKind::PatientResponsibility,
                "30.00",
                LedgerAccount::InsuranceAr,
            ),
            entry(3, EntryKind::Payment, "-40.00", LedgerAccount::Cash),
        ];
        let credit = build(&input(&entries, &services, None, 10));
        assert_eq!(credit.closing_balance, m("-10.00"));
        assert_eq!(credit.amount_due, Money::ZERO);
        let owed = [entry(
            2,
            EntryKind::PatientResponsibility,
            "300.00",
            LedgerAccount::InsuranceAr,
        )];
        let mut on_plan = input(&owed, &services, None, 10);
        on_plan.installment_due = Some(m("50.00"));
        let s = build(&on_plan);
        assert_eq!((s.amount_due, s.minimum_due), (m("300.00"), m("50.00")));
    }
}
