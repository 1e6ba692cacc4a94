//! Payer adjudications of claims (835 CLP/CAS/SVC) and the rules that turn one into a claim status.
//!
//! The outcome of an adjudication that is not a reversal:
//!
//! - **DENIED** when CLP02 is 4 (denied) or 23 (not our claim), or when nothing was paid (CLP04 = 0),
//!   no amount went to the patient (no PR adjustment) and some amount was denied;
//! - **PARTIALLY_PAID** otherwise, when some amount was denied;
//! - **PAID** otherwise.
//!
//! The **denied amount** is the sum of the adjustments at claim and line level in groups CO, OA and
//! PI whose reason (CARC) is not a payment reduction (see [`REDUCTION_REASONS`]). A contractual
//! reduction (CO-45 fee schedule, CO-253 sequestration, ...) only lowers the allowed amount of a
//! covered service; a PR adjustment (deductible, coinsurance, copay) is covered but billed to the
//! patient; CR corrects a prior adjudication. None of them is a denial, so a claim paid at the fee
//! schedule with a copay is PAID, and a claim applied wholly to the deductible (nothing paid, only
//! PR) is PAID too: the payer processed it and the patient owes the balance.
//!
//! A **reversal** (CLP02 22) carries the negated amounts of the adjudication in force; it moves the
//! claim back to the status it had before that one, and a following adjudication replaces it.

pub(crate) mod rpc;

use chrono::{DateTime, NaiveDate, Utc};
use medbill_domain::{Money, code_enum};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::model::ClaimStatus;

code_enum!(
    /// CLP02 claim status code of an 835 claim payment.
    ClaimPaymentStatus, "claim status code (CLP02)", {
        /// Processed as primary.
        ProcessedPrimary => "1",
        /// Processed as secondary.
        ProcessedSecondary => "2",
        /// Processed as tertiary.
        ProcessedTertiary => "3",
        /// Denied.
        Denied => "4",
        /// Processed as primary, forwarded to additional payer(s).
        ForwardedPrimary => "19",
        /// Processed as secondary, forwarded to additional payer(s).
        ForwardedSecondary => "20",
        /// Processed as tertiary, forwarded to additional payer(s).
        ForwardedTertiary => "21",
        /// Reversal of a previous payment.
        Reversal => "22",
        /// Not our claim, forwarded to additional payer(s).
        NotOurClaim => "23",
        /// Predetermination pricing only, no payment.
        Predetermination => "25",
    }
);

code_enum!(
    /// CAS01 claim adjustment group code.
    AdjustmentGroup, "adjustment group", {
        /// Contractual obligation: the provider writes the amount off.
        Co => "CO",
        /// Patient responsibility.
        Pr => "PR",
        /// Other adjustment.
        Oa => "OA",
        /// Payer initiated reduction.
        Pi => "PI",
        /// Correction and reversal.
        Cr => "CR",
    }
);

/// CARCs that reduce the payment of a covered service rather than deny it: 23 impact of prior
/// payer(s) adjudication, 24 covered under a capitation agreement, 45 charge exceeds the fee
/// schedule, 59 multiple or concurrent procedure rules, 94 processed in excess of charges, 131
/// claim-specific negotiated discount, 144 incentive adjustment, 237 legislated or regulatory
/// penalty, 253 sequestration.
pub const REDUCTION_REASONS: &[&str] = &["23", "24", "45", "59", "94", "131", "144", "237", "253"];

/// One CAS (group, reason, amount, quantity) triplet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    /// CAS01.
    pub group: AdjustmentGroup,
    /// CARC (CAS02, CAS05, ...).
    pub reason: String,
    /// Amount (CAS03, ...); positive amounts reduce the payment, negative in a reversal.
    pub amount: Money,
    /// Units adjusted (CAS04, ...), when sent.
    pub quantity: Option<Decimal>,
}

impl Adjustment {
    /// Returns whether this adjustment counts in the denied amount (see the module docs).
    pub fn is_denial(&self) -> bool {
        matches!(
            self.group,
            AdjustmentGroup::Co | AdjustmentGroup::Oa | AdjustmentGroup::Pi
        ) && !REDUCTION_REASONS.contains(&self.reason.as_str())
    }
}

/// The adjudication of one service line (835 loop 2110).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineAdjudication {
    /// REF*6R, when the payer returned it.
    pub line_control_number: Option<String>,
    /// SVC01-2.
    pub procedure_code: String,
    /// SVC02.
    pub charge: Money,
    /// SVC03.
    pub paid: Money,
    /// AMT*B6, when sent.
    pub allowed: Option<Money>,
    /// SVC05, when sent.
    pub units: Option<Decimal>,
    /// Line CAS.
    pub adjustments: Vec<Adjustment>,
    /// LQ*HE remark codes.
    pub remarks: Vec<String>,
}

/// A payer's adjudication of a claim as received (835 loop 2100), before it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjudication {
    /// Remittance (ERA) id.
    pub era_id: String,
    /// Claim payment id within the ERA.
    pub claim_payment_id: String,
    /// CLP02.
    pub status_code: ClaimPaymentStatus,
    /// CLP03.
    pub charge: Money,
    /// CLP04; negative in a reversal.
    pub paid: Money,
    /// CLP05, when sent.
    pub patient_responsibility: Option<Money>,
    /// CLP07, when sent.
    pub payer_claim_control_number: Option<String>,
    /// Claim-level CAS.
    pub adjustments: Vec<Adjustment>,
    /// MIA/MOA remark codes.
    pub remarks: Vec<String>,
    /// Service lines.
    pub lines: Vec<LineAdjudication>,
    /// BPR16, when sent.
    pub payment_date: Option<NaiveDate>,
}

/// An adjudication as stored on a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedAdjudication {
    /// UUID v7 of the stored adjudication.
    pub id: Uuid,
    /// What the payer said.
    pub adjudication: Adjudication,
    /// When medbill applied it.
    pub applied_at: DateTime<Utc>,
    /// The claim's status before it was applied (where a reversal of it returns to).
    pub status_before: ClaimStatus,
    /// The claim's status after it was applied.
    pub status_after: ClaimStatus,
    /// For a reversal: the adjudication it undid.
    pub reverses: Option<Uuid>,
    /// For an adjudication a reversal undid: that reversal.
    pub reversed_by: Option<Uuid>,
}

impl Adjudication {
    /// Returns every adjustment, claim level first, then each line's in order.
    pub fn all_adjustments(&self) -> impl Iterator<Item = &Adjustment> {
        self.adjustments
            .iter()
            .chain(self.lines.iter().flat_map(|l| l.adjustments.iter()))
    }

    /// Returns the patient responsibility adjustments (group PR) at claim and line level.
    pub fn patient_responsibility_adjustments(&self) -> Vec<&Adjustment> {
        self.all_adjustments()
            .filter(|a| a.group == AdjustmentGroup::Pr)
            .collect()
    }

    /// Returns the sum of the PR adjustments (negative for a reversal), `None` on overflow.
    pub fn patient_responsibility_total(&self) -> Option<Money> {
        self.patient_responsibility_adjustments()
            .into_iter()
            .try_fold(Money::ZERO, |acc, a| acc.checked_add(a.amount))
    }

    /// Returns the denied amount (see the module docs), `None` on overflow.
    pub fn denied_amount(&self) -> Option<Money> {
        self.all_adjustments()
            .filter(|a| a.is_denial())
            .try_fold(Money::ZERO, |acc, a| acc.checked_add(a.amount))
    }

    /// Returns the status the claim takes from this adjudication, or `None` for a reversal
    /// (which returns the claim to its status before the adjudication it undoes) and a
    /// predetermination (which is no payment).
    pub fn outcome(&self) -> Option<ClaimStatus> {
        use ClaimPaymentStatus as S;
        match self.status_code {
            S::Reversal | S::Predetermination => None,
            S::Denied | S::NotOurClaim => Some(ClaimStatus::Denied),
            _ => {
                let denied = self.denied_amount().unwrap_or(Money::ZERO);
                let has_pr = self
                    .all_adjustments()
                    .any(|a| a.group == AdjustmentGroup::Pr && !a.amount.is_zero());
                Some(if !denied.is_positive() {
                    ClaimStatus::Paid
                } else if self.paid.is_zero() && !has_pr {
                    ClaimStatus::Denied
                } else {
                    ClaimStatus::PartiallyPaid
                })
            }
        }
    }

    /// Reports whether `self` (a reversal) negates `previous`: its paid and charge amounts are
    /// the previous one's with the sign turned.
    pub fn negates(&self, previous: &Adjudication) -> bool {
        self.paid == -previous.paid && self.charge == -previous.charge
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    fn adj(group: AdjustmentGroup, reason: &str, amount: &str) -> Adjustment {
        Adjustment {
            group,
            reason: reason.into(),
            amount: m(amount),
            quantity: None,
        }
    }

    fn line(paid: &str, charge: &str, adjustments: Vec<Adjustment>) -> LineAdjudication {
        LineAdjudication {
            line_control_number: None,
            procedure_code: "99213".into(),
            charge: m(charge),
            paid: m(paid),
            allowed: None,
            units: None,
            adjustments,
            remarks: vec![],
        }
    }

    fn adjudication(code: &str, paid: &str, lines: Vec<LineAdjudication>) -> Adjudication {
        Adjudication {
            era_id: "era".into(),
            claim_payment_id: "cp".into(),
            status_code: code.parse().unwrap(),
            charge: m("200.00"),
            paid: m(paid),
            patient_responsibility: None,
            payer_claim_control_number: None,
            adjustments: vec![],
            remarks: vec![],
            lines,
            payment_date: None,
        }
    }

    use AdjustmentGroup::{Co, Oa, Pr};

    #[test]
    fn fee_schedule_and_copay_are_paid() {
        let a = adjudication(
            "1",
            "70.00",
            vec![
                line(
                    "50.00",
                    "100.00",
                    vec![adj(Co, "45", "30.00"), adj(Pr, "3", "20.00")],
                ),
                line("20.00", "100.00", vec![adj(Co, "45", "80.00")]),
            ],
        );
        assert_eq!(a.denied_amount(), Some(Money::ZERO));
        assert_eq!(a.outcome(), Some(ClaimStatus::Paid));
        assert_eq!(a.patient_responsibility_total(), Some(m("20.00")));
    }

    #[test]
    fn a_denied_line_makes_a_partial_payment() {
        let a = adjudication(
            "1",
            "80.00",
            vec![
                line("80.00", "100.00", vec![adj(Co, "45", "20.00")]),
                line("0", "100.00", vec![adj(Co, "97", "100.00")]),
            ],
        );
        assert_eq!(a.denied_amount(), Some(m("100.00")));
        assert_eq!(a.outcome(), Some(ClaimStatus::PartiallyPaid));
    }

    #[test]
    fn nothing_paid_with_only_denials_is_denied_but_the_deductible_is_paid() {
        let denied = adjudication(
            "1",
            "0",
            vec![line("0", "200.00", vec![adj(Oa, "18", "200.00")])],
        );
        assert_eq!(denied.outcome(), Some(ClaimStatus::Denied));
        let deductible = adjudication(
            "1",
            "0",
            vec![line("0", "200.00", vec![adj(Pr, "1", "200.00")])],
        );
        assert_eq!(deductible.outcome(), Some(ClaimStatus::Paid));
        let mixed = adjudication(
            "1",
            "0",
            vec![line(
                "0",
                "200.00",
                vec![adj(Pr, "1", "100.00"), adj(Co, "50", "100.00")],
            )],
        );
        assert_eq!(mixed.outcome(), Some(ClaimStatus::PartiallyPaid));
    }

    #[test]
    fn clp02_decides_denials_reversals_and_predeterminations() {
        assert_eq!(
            adjudication("4", "0", vec![]).outcome(),
            Some(ClaimStatus::Denied)
        );
        assert_eq!(adjudication("22", "-70.00", vec![]).outcome(), None);
        assert_eq!(adjudication("25", "0", vec![]).outcome(), None);
        assert!("5".parse::<ClaimPaymentStatus>().is_err());
    }

    #[test]
    fn a_reversal_negates_paid_and_charge() {
        let first = adjudication("1", "70.00", vec![]);
        let mut reversal = adjudication("22", "-70.00", vec![]);
        reversal.charge = m("-200.00");
        assert!(reversal.negates(&first));
        reversal.paid = m("-60.00");
        assert!(!reversal.negates(&first));
    }
}
