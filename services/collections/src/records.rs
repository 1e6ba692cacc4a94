//! The records kept next to ledger entries (how a payment came, a refund, where patient
//! responsibility came from, a self-pay bill), per-claim balances with the allocation of money
//! to them, and the aging report's rows.

use chrono::NaiveDate;
use medbill_domain::{AccountId, ClaimId, JournalEntryId, Money};

use crate::aging::Aging;
use crate::model::{AccountStatus, PayerType, PaymentMethod};

/// What the patient owes on one claim (or unallocated, `claim` `None`): the sum of the account's
/// `PATIENT_AR` postings tied to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimBalance {
    /// The claim; `None` for amounts tied to no claim (a credit balance, a refund).
    pub claim: Option<ClaimId>,
    /// When the first amount on it was posted (unix microseconds): the allocation order.
    pub first_posted: i64,
    /// Debit positive (owed), credit negative.
    pub balance: Money,
}

/// Splits `amount` (positive) over the open claims: to `claim` alone when one is named, else to
/// the claims owing something, oldest first. Returns `(claim, part)` pairs in that order; what
/// is left once they are paid comes last under `None` (it becomes a credit balance).
pub fn allocate(
    amount: Money,
    open: &[ClaimBalance],
    claim: Option<ClaimId>,
) -> Vec<(Option<ClaimId>, Money)> {
    let mut owing: Vec<&ClaimBalance> = open
        .iter()
        .filter(|b| b.balance.is_positive())
        .filter(|b| claim.is_none() || b.claim == claim)
        .collect();
    owing.sort_by_key(|b| b.first_posted);
    let mut left = amount;
    let mut parts: Vec<(Option<ClaimId>, Money)> = Vec::new();
    for b in owing {
        if !left.is_positive() {
            break;
        }
        let part = if b.balance < left { b.balance } else { left };
        parts.push((b.claim, part));
        left -= part;
    }
    if left.is_positive() {
        match parts.iter_mut().find(|(c, _)| c.is_none()) {
            Some((_, part)) => *part += left,
            None => parts.push((None, left)),
        }
    }
    parts
}

/// A payment's record (the money is on its journal entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    /// The payment id (UUID v7), the payment entry's source.
    pub id: uuid::Uuid,
    /// The account paid.
    pub account_id: AccountId,
    /// The journal entry that holds it.
    pub entry_id: JournalEntryId,
    /// Who paid.
    pub payer_type: PayerType,
    /// The third party's opaque id, when given.
    pub payer_ref: Option<String>,
    /// How it was paid.
    pub method: PaymentMethod,
    /// Check number or processor reference.
    pub reference: Option<String>,
    /// When it was received.
    pub received_date: NaiveDate,
    /// Amount received (positive).
    pub amount: Money,
    /// The claim the payer named, when one was.
    pub claim: Option<ClaimId>,
}

/// A refund's record, status PENDING.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRefund {
    /// The refund id.
    pub id: medbill_domain::RefundId,
    /// The account refunded.
    pub account_id: AccountId,
    /// The journal entry that holds it.
    pub entry_id: JournalEntryId,
    /// Amount (positive).
    pub amount: Money,
    /// How it is paid out.
    pub method: PaymentMethod,
    /// Why (no PHI).
    pub reason: String,
    /// Check number or processor reference, when known.
    pub reference: Option<String>,
}

/// One PR adjustment line of a patient-responsibility entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponsibilityLine {
    /// The CAS group code ("PR").
    pub group: String,
    /// The CARC ("1" deductible, "2" coinsurance, "3" copay, ...).
    pub reason: String,
    /// The amount.
    pub amount: Money,
}

/// Where a patient-responsibility entry came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewResponsibility {
    /// The journal entry.
    pub entry_id: JournalEntryId,
    /// The claim, when known.
    pub claim: Option<ClaimId>,
    /// The ERA, when known.
    pub era_id: Option<medbill_domain::EraId>,
    /// CLP01, when known.
    pub patient_control_number: Option<String>,
    /// Date of service, when known.
    pub service_date: Option<NaiveDate>,
    /// True when the entry posts a corrected adjudication's difference.
    pub corrected: bool,
    /// Charges billed on the claim (CLP03), when remittance sent them.
    pub total_charge: Option<Money>,
    /// What the payer paid (CLP04), when remittance sent it.
    pub payer_paid: Option<Money>,
    /// The PR lines.
    pub lines: Vec<ResponsibilityLine>,
}

/// A self-pay encounter billed to the patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSelfPayBill {
    /// The claim (encounter).
    pub claim: ClaimId,
    /// The journal entry.
    pub entry_id: JournalEntryId,
    /// Date of service.
    pub service_date: NaiveDate,
    /// Sum of the charges.
    pub gross: Money,
    /// The self-pay discount.
    pub discount: Money,
    /// The Good Faith Estimate given, when one was.
    pub estimate_id: Option<medbill_domain::EstimateId>,
}

/// Narrows an aging report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgingReportFilter {
    /// Only accounts in this status.
    pub status: Option<AccountStatus>,
    /// Only accounts owing something in this bucket or older: 1 = 0-30 (every account with a
    /// balance) up to 5 = over 120 days.
    pub min_bucket: u8,
}

/// One account of an aging report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgingRow {
    /// The account.
    pub account_id: AccountId,
    /// The EHR's opaque patient id.
    pub patient_ref: String,
    /// The account's status.
    pub status: AccountStatus,
    /// What it owes by age.
    pub aging: Aging,
}

/// An aging report page with the totals over every matching account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgingReport {
    /// Sums over every matching account.
    pub totals: Aging,
    /// How many accounts match.
    pub account_count: u64,
    /// This page's rows, in account id order (one more than asked for when there is a next page).
    pub rows: Vec<AgingRow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn allocation_pays_the_oldest_claims_first_and_keeps_the_rest_as_credit() {
        let (a, b) = (ClaimId::new(), ClaimId::new());
        let open = [
            ClaimBalance {
                claim: Some(b),
                first_posted: 20,
                balance: m("30.00"),
            },
            ClaimBalance {
                claim: Some(a),
                first_posted: 10,
                balance: m("60.00"),
            },
            ClaimBalance {
                claim: None,
                first_posted: 5,
                balance: m("-5.00"),
            },
        ];
        assert_eq!(
            allocate(m("100.00"), &open, None),
            vec![
                (Some(a), m("60.00")),
                (Some(b), m("30.00")),
                (None, m("10.00"))
            ]
        );
        assert_eq!(
            allocate(m("50.00"), &open, None),
            vec![(Some(a), m("50.00"))]
        );
        assert_eq!(
            allocate(m("40.00"), &open, Some(b)),
            vec![(Some(b), m("30.00")), (None, m("10.00"))],
            "a named claim only; the rest is a credit"
        );
        assert_eq!(allocate(m("5.00"), &[], None), vec![(None, m("5.00"))]);
    }
}
