//! 835 balancing: line, claim and transaction levels.
//!
//! - line: SVC02 - sum(line CAS amounts) = SVC03
//! - claim: CLP03 - sum(claim CAS + line CAS amounts) = CLP04
//! - transaction: sum(CLP04) - sum(PLB amounts) = BPR02
//!
//! For each check, `expected` is the left side computed from the file and
//! `actual` the amount the file states (SVC03, CLP04, BPR02); `difference` is
//! `actual - expected`. Imbalances are reported, never corrected: no plug
//! adjustment is ever invented.

use rust_decimal::Decimal;
use serde::Serialize;

use crate::transactions::era835::{ClaimPayment, Remittance};

/// The level a balancing rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// A service line (SVC).
    Line,
    /// A claim (CLP).
    Claim,
    /// The whole transaction set (BPR).
    Transaction,
}

/// One imbalance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BalanceProblem {
    /// Which rule failed.
    pub level: Level,
    /// CLP01 of the claim (None at transaction level).
    pub claim: Option<String>,
    /// 1-based line number within the claim (line level only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based index of the SVC, CLP or BPR segment in the input.
    pub segment_index: usize,
    /// Byte offset of that segment in the input.
    #[serde(skip)]
    pub segment_offset: usize,
    /// Amount computed from the file (charge minus adjustments; or claims minus PLB).
    #[serde(with = "rust_decimal::serde::str")]
    pub expected: Decimal,
    /// Amount the file states (SVC03, CLP04, BPR02).
    #[serde(with = "rust_decimal::serde::str")]
    pub actual: Decimal,
    /// `actual - expected`.
    #[serde(with = "rust_decimal::serde::str")]
    pub difference: Decimal,
}

impl std::fmt::Display for BalanceProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.level {
            Level::Line => write!(
                f,
                "line {} of claim {:?} does not balance: SVC02 - line CAS = {} but SVC03 = {} (difference {})",
                self.line.unwrap_or(0),
                self.claim.as_deref().unwrap_or(""),
                self.expected,
                self.actual,
                self.difference
            ),
            Level::Claim => write!(
                f,
                "claim {:?} does not balance: CLP03 - claim and line CAS = {} but CLP04 = {} (difference {})",
                self.claim.as_deref().unwrap_or(""),
                self.expected,
                self.actual,
                self.difference
            ),
            Level::Transaction => write!(
                f,
                "transaction does not balance: sum(CLP04) - sum(PLB) = {} but BPR02 = {} (difference {})",
                self.expected, self.actual, self.difference
            ),
        }
    }
}

/// The result of balancing one 835 transaction set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BalanceReport {
    /// True when there is no problem.
    pub balanced: bool,
    /// Every imbalance, in input order (lines before their claim, claims before the transaction).
    pub problems: Vec<BalanceProblem>,
}

/// Checks one claim's lines and the claim itself, appending imbalances to `out`.
pub fn balance_claim(claim: &ClaimPayment<'_>, out: &mut Vec<BalanceProblem>) {
    let mut line_cas = Decimal::ZERO;
    for (n, svc) in claim.services.iter().enumerate() {
        let cas: Decimal = svc.adjustments.iter().map(|a| a.amount).sum();
        line_cas += cas;
        let expected = svc.charge - cas;
        if expected != svc.paid {
            out.push(BalanceProblem {
                level: Level::Line,
                claim: Some(claim.patient_control_number.to_string()),
                line: Some(n + 1),
                segment_index: svc.segment_index,
                segment_offset: svc.segment_offset,
                expected,
                actual: svc.paid,
                difference: svc.paid - expected,
            });
        }
    }
    let claim_cas: Decimal = claim.adjustments.iter().map(|a| a.amount).sum();
    let expected = claim.charge - claim_cas - line_cas;
    if expected != claim.paid {
        out.push(BalanceProblem {
            level: Level::Claim,
            claim: Some(claim.patient_control_number.to_string()),
            line: None,
            segment_index: claim.segment_index,
            segment_offset: claim.segment_offset,
            expected,
            actual: claim.paid,
            difference: claim.paid - expected,
        });
    }
}

/// Checks the transaction rule from totals: `claims_paid` (sum of CLP04) minus
/// the PLB amounts must equal BPR02.
pub fn balance_transaction(
    remittance: &Remittance<'_>,
    claims_paid: Decimal,
) -> Option<BalanceProblem> {
    let plb: Decimal = remittance
        .provider_adjustments
        .iter()
        .map(|p| p.amount)
        .sum();
    let expected = claims_paid - plb;
    let actual = remittance.payment.amount;
    (expected != actual).then(|| BalanceProblem {
        level: Level::Transaction,
        claim: None,
        line: None,
        segment_index: remittance.payment.segment_index,
        segment_offset: remittance.payment.segment_offset,
        expected,
        actual,
        difference: actual - expected,
    })
}

/// Balances a whole remittance held in memory.
pub fn balance(remittance: &Remittance<'_>) -> BalanceReport {
    let mut problems = Vec::new();
    for claim in &remittance.claims {
        balance_claim(claim, &mut problems);
    }
    problems.extend(balance_transaction(
        remittance,
        remittance.claims_paid_total,
    ));
    BalanceReport {
        balanced: problems.is_empty(),
        problems,
    }
}
