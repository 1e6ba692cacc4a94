//! The print-vendor file: one JSON object per statement and line (JSON lines), the layout
//! documented in docs/collections.md. Money is a decimal string, dates are "YYYY-MM-DD"; the
//! mail house merges the address by `patient_ref` (no PHI is in the file).

use medbill_domain::Money;
use serde::Serialize;

use super::Statement;

/// The file's version, first field of each line: a reader refuses a version it does not know.
pub const LAYOUT: &str = "medbill.statement.v1";

#[derive(Serialize)]
struct PrintAging {
    days_0_30: Money,
    days_31_60: Money,
    days_61_90: Money,
    days_91_120: Money,
    days_over_120: Money,
}

#[derive(Serialize)]
struct PrintLine<'a> {
    date: String,
    description: &'a str,
    charges: Option<Money>,
    insurance_paid: Option<Money>,
    insurance_adjustments: Option<Money>,
    amount: Money,
}

#[derive(Serialize)]
struct PrintStatement<'a> {
    layout: &'static str,
    statement_id: String,
    account_id: String,
    patient_ref: &'a str,
    statement_date: String,
    due_date: String,
    sequence: u32,
    previous_balance: Money,
    new_charges: Money,
    payments: Money,
    adjustments: Money,
    closing_balance: Money,
    amount_due: Money,
    minimum_due: Money,
    aging: PrintAging,
    lines: Vec<PrintLine<'a>>,
    dunning_message: &'a str,
    financial_assistance_summary: &'a str,
    contact_text: &'a str,
}

/// Returns the statement's line of the print-vendor file, ending with a newline.
pub fn line(s: &Statement) -> String {
    let record = PrintStatement {
        layout: LAYOUT,
        statement_id: s.id.to_string(),
        account_id: s.account_id.to_string(),
        patient_ref: &s.patient_ref,
        statement_date: s.statement_date.to_string(),
        due_date: s.due_date.to_string(),
        sequence: s.sequence,
        previous_balance: s.previous_balance,
        new_charges: s.new_charges,
        payments: s.payments,
        adjustments: s.adjustments,
        closing_balance: s.closing_balance,
        amount_due: s.amount_due,
        minimum_due: s.minimum_due,
        aging: PrintAging {
            days_0_30: s.aging.days_0_30,
            days_31_60: s.aging.days_31_60,
            days_61_90: s.aging.days_61_90,
            days_91_120: s.aging.days_91_120,
            days_over_120: s.aging.days_over_120,
        },
        lines: s
            .lines
            .iter()
            .map(|l| PrintLine {
                date: l.date.to_string(),
                description: &l.description,
                charges: l.charges,
                insurance_paid: l.insurance_paid,
                insurance_adjustments: l.insurance_adjustments,
                amount: l.amount,
            })
            .collect(),
        dunning_message: &s.dunning_message,
        financial_assistance_summary: &s.financial_assistance_summary,
        contact_text: &s.contact_text,
    };
    // Serialising plain strings and numbers cannot fail.
    let mut text = serde_json::to_string(&record).unwrap_or_default();
    text.push('\n');
    text
}
