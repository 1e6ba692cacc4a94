//! Deposit reconciliation: bank deposits matched to ERAs by trace number (TRN02) and amount.
//!
//! The rules (docs/remittance.md, "Deposit reconciliation"):
//!
//! - Deposits are grouped by trace number and payer as given (an empty payer is its own group
//!   that matches ERAs of any payer). A group's ERAs are the tenant's ERAs with that TRN02 (of
//!   that payer when one is given) that are not REJECTED.
//! - An ERA's amount is BPR02, negative for a debit (BPR03 D), zero when no money moves (BPR04
//!   NON). BPR02 already nets the PLB provider adjustments (BPR02 = sum CLP04 - sum PLB), so the
//!   ERAs' total is what the bank should show; claim payments and PLB are reported beside it.
//! - The group's outcome: no ERA: UNMATCHED_DEPOSIT; the deposits add up to the ERAs to the cent:
//!   MATCHED; otherwise VARIANCE with the difference (deposits minus ERAs). Several deposits of
//!   one trace (a payment in parts) are summed; one deposit for several ERAs of one trace (split
//!   835s) is matched against their sum.
//! - Every deposit of the group carries the group's outcome, and it is worked out again when a
//!   deposit or an ERA with the trace arrives, so a partial deposit turns MATCHED when the rest
//!   comes and an unmatched deposit turns MATCHED when its ERA is ingested.
//! - An ERA that moves money and that no deposit names is UNMATCHED_ERA (on GetEra / ListEras).
//!
//! [`rpc`] holds ReconcileDeposit and ListDepositReconciliations.

pub mod rpc;

use chrono::{DateTime, NaiveDate, Utc};
use medbill_domain::{EraId, Money, code_enum};

code_enum!(
    /// Outcome of reconciling deposits and ERAs.
    ReconciliationStatus, "reconciliation status", {
        /// The deposits add up to the ERAs.
        Matched => "MATCHED",
        /// ERAs found, another amount deposited.
        Variance => "VARIANCE",
        /// No ERA has the deposit's trace number.
        UnmatchedDeposit => "UNMATCHED_DEPOSIT",
        /// An ERA that moves money has no deposit.
        UnmatchedEra => "UNMATCHED_ERA",
    }
);

/// A bank deposit as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDeposit {
    /// EFT trace or check number (TRN02).
    pub trace_number: String,
    /// Amount deposited.
    pub amount: Money,
    /// Day of the deposit.
    pub deposit_date: NaiveDate,
    /// ACH, CHK...; empty when unknown.
    pub payment_method: String,
    /// The payer, when known; empty otherwise.
    pub payer_id: String,
    /// The bank account's label.
    pub bank_account_ref: String,
    /// The bank statement's text.
    pub description: String,
}

/// One ERA as reconciliation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EraAmounts {
    /// The ERA.
    pub id: EraId,
    /// What the bank should show for it: BPR02, signed, zero when no money moves.
    pub amount: Money,
    /// Sum of its claim payments (CLP04).
    pub claim_payments: Money,
    /// Sum of its PLB amounts.
    pub provider_adjustments: Money,
}

impl EraAmounts {
    /// The amount an ERA moves: BPR02, negative for a debit, zero for BPR04 NON.
    pub fn moved(amount: Option<Money>, credit_debit: Option<&str>, method: Option<&str>) -> Money {
        let amount = amount.unwrap_or_default();
        match (method, credit_debit) {
            (Some("NON"), _) => Money::default(),
            (_, Some("D")) => -amount,
            _ => amount,
        }
    }
}

/// The outcome of one group of deposits (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// MATCHED, VARIANCE or UNMATCHED_DEPOSIT.
    pub status: ReconciliationStatus,
    /// The group's ERAs, in id order.
    pub era_ids: Vec<EraId>,
    /// Sum of the ERAs' amounts.
    pub era_total: Money,
    /// Sum of their claim payments.
    pub claim_payments_total: Money,
    /// Sum of their PLB amounts.
    pub provider_adjustments_total: Money,
    /// Sum of the group's deposits.
    pub deposit_total: Money,
    /// Deposits minus ERAs.
    pub difference: Money,
    /// The outcome in plain words.
    pub message: String,
}

/// Works out a group's outcome from its ERAs and the amounts of its deposits.
pub fn reconcile(trace: &str, eras: &[EraAmounts], deposits: &[Money]) -> Outcome {
    let era_total: Money = eras.iter().map(|e| e.amount).sum();
    let deposit_total: Money = deposits.iter().copied().sum();
    let difference = deposit_total - era_total;
    let (status, message) = if eras.is_empty() {
        (
            ReconciliationStatus::UnmatchedDeposit,
            format!("no ERA has trace number {trace}; the deposit is matched when its 835 arrives"),
        )
    } else if difference.is_zero() {
        let parts = match (deposits.len(), eras.len()) {
            (1, 1) => String::new(),
            (d, 1) => format!(" ({d} partial deposits)"),
            (1, e) => format!(" (one deposit for {e} ERAs)"),
            (d, e) => format!(" ({d} deposits for {e} ERAs)"),
        };
        (
            ReconciliationStatus::Matched,
            format!("deposits of {deposit_total} match the ERAs of trace {trace}{parts}"),
        )
    } else if difference < Money::default() {
        (
            ReconciliationStatus::Variance,
            format!(
                "deposits of {deposit_total} are short of the ERAs' {era_total} by {}; a partial \
                 deposit stays here until the rest arrives with trace {trace}",
                -difference
            ),
        )
    } else {
        (
            ReconciliationStatus::Variance,
            format!("deposits of {deposit_total} exceed the ERAs' {era_total} by {difference}"),
        )
    };
    Outcome {
        status,
        era_ids: eras.iter().map(|e| e.id).collect(),
        era_total,
        claim_payments_total: eras.iter().map(|e| e.claim_payments).sum(),
        provider_adjustments_total: eras.iter().map(|e| e.provider_adjustments).sum(),
        deposit_total,
        difference,
        message,
    }
}

/// A stored deposit with its group's current outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    /// UUID v7.
    pub id: String,
    /// The deposit.
    pub deposit: NewDeposit,
    /// The group's outcome.
    pub outcome: Outcome,
    /// Every deposit of the group, in order.
    pub deposit_ids: Vec<String>,
    /// When stored.
    pub created_at: DateTime<Utc>,
    /// When the outcome last changed.
    pub updated_at: DateTime<Utc>,
}

/// Filters of the reconciliation listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconciliationFilter {
    /// Outcome.
    pub status: Option<ReconciliationStatus>,
    /// Trace number.
    pub trace_number: Option<String>,
    /// Payer as given with the deposit.
    pub payer_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    fn era(amount: &str) -> EraAmounts {
        EraAmounts {
            id: EraId::new(),
            amount: m(amount),
            claim_payments: m(amount),
            provider_adjustments: Money::default(),
        }
    }

    #[test]
    fn outcomes() {
        let one = [era("170.00")];
        assert_eq!(
            reconcile("T", &one, &[m("170.00")]).status,
            ReconciliationStatus::Matched
        );
        let short = reconcile("T", &one, &[m("100.00")]);
        assert_eq!(short.status, ReconciliationStatus::Variance);
        assert_eq!(short.difference, m("-70.00"));
        assert_eq!(
            reconcile("T", &one, &[m("100.00"), m("70.00")]).status,
            ReconciliationStatus::Matched
        );
        let split = [era("100.00"), era("24.50")];
        assert_eq!(
            reconcile("T", &split, &[m("124.50")]).status,
            ReconciliationStatus::Matched
        );
        assert_eq!(
            reconcile("T", &[], &[m("5.00")]).status,
            ReconciliationStatus::UnmatchedDeposit
        );
    }

    #[test]
    fn an_era_moves_bpr02_signed() {
        assert_eq!(
            EraAmounts::moved(Some(m("10.00")), Some("D"), Some("ACH")),
            m("-10.00")
        );
        assert_eq!(
            EraAmounts::moved(Some(m("10.00")), Some("C"), Some("NON")),
            Money::default()
        );
        assert_eq!(
            EraAmounts::moved(Some(m("10.00")), Some("C"), Some("CHK")),
            m("10.00")
        );
    }
}
