//! The claim life cycle: which status may follow which, and why. The one table every status
//! change is checked against; [`crate::store::ClaimStore::transition`] applies it together
//! with the conditional update and the history row.

use crate::model::ClaimStatus;

use ClaimStatus::{
    Accepted, Denied, Draft, Held, Paid, PartiallyPaid, Ready, Rejected, Submitted, Void,
};

/// Every legal move `(from, to, why)`. A move not listed is refused.
///
/// Adjudicated statuses may follow each other because an 835 can reverse a payment (CLP02 22)
/// and post a corrected one; an ERA may arrive before (or instead of) the 277CA, so SUBMITTED
/// goes straight to an adjudicated status too. VOID is final.
pub const TRANSITIONS: &[(ClaimStatus, ClaimStatus, &str)] = &[
    (Draft, Held, "scrubbing found an error"),
    (Draft, Ready, "scrubbing passed"),
    (Draft, Void, "cancelled before submission"),
    (Held, Held, "scrubbed again and still failing"),
    (Held, Ready, "scrubbed again and passed"),
    (Held, Void, "cancelled before submission"),
    (Ready, Held, "scrubbed again and failed"),
    (Ready, Ready, "scrubbed again and passed"),
    (Ready, Submitted, "sent in an 837 batch"),
    (Ready, Void, "cancelled before submission"),
    (
        Submitted,
        Ready,
        "the 837 batch could not be delivered; ready for the next batch",
    ),
    (
        Submitted,
        Accepted,
        "accepted into adjudication (277CA A1/A2)",
    ),
    (
        Submitted,
        Rejected,
        "rejected before adjudication (999 or 277CA)",
    ),
    (Submitted, Paid, "paid in full (835)"),
    (Submitted, PartiallyPaid, "paid in part (835)"),
    (Submitted, Denied, "denied (835)"),
    (Accepted, Rejected, "rejected after acceptance (277CA)"),
    (Accepted, Paid, "paid in full (835)"),
    (Accepted, PartiallyPaid, "paid in part (835)"),
    (Accepted, Denied, "denied (835)"),
    (Accepted, Void, "void (frequency 8) sent to the payer"),
    (
        Rejected,
        Draft,
        "corrected after a rejection, to be scrubbed again",
    ),
    (Rejected, Void, "cancelled after a rejection"),
    (
        Paid,
        Paid,
        "corrected adjudication (835 reversal and repost)",
    ),
    (
        Paid,
        PartiallyPaid,
        "corrected adjudication (835 reversal and repost)",
    ),
    (Paid, Denied, "payment reversed (835 CLP02 22)"),
    (Paid, Void, "void (frequency 8) sent to the payer"),
    (PartiallyPaid, Paid, "corrected adjudication (835)"),
    (PartiallyPaid, PartiallyPaid, "corrected adjudication (835)"),
    (PartiallyPaid, Denied, "payment reversed (835 CLP02 22)"),
    (PartiallyPaid, Void, "void (frequency 8) sent to the payer"),
    (Denied, Paid, "paid after appeal or correction (835)"),
    (
        Denied,
        PartiallyPaid,
        "paid in part after appeal or correction (835)",
    ),
    (Denied, Void, "void (frequency 8) sent to the payer"),
    (Denied, Denied, "denied again (835)"),
    (Submitted, Void, "void (frequency 8) sent to the payer"),
    // A reversal (835 CLP02 22) returns the claim to where the reversed adjudication found it.
    (Paid, Submitted, "adjudication reversed (835 CLP02 22)"),
    (Paid, Accepted, "adjudication reversed (835 CLP02 22)"),
    (
        PartiallyPaid,
        Submitted,
        "adjudication reversed (835 CLP02 22)",
    ),
    (
        PartiallyPaid,
        Accepted,
        "adjudication reversed (835 CLP02 22)",
    ),
    (Denied, Submitted, "adjudication reversed (835 CLP02 22)"),
    (Denied, Accepted, "adjudication reversed (835 CLP02 22)"),
];

/// A status change the life cycle does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a claim in status {} cannot move to {}", from.as_str(), to.as_str())]
pub struct IllegalTransition {
    /// The claim's status now.
    pub from: ClaimStatus,
    /// The status asked for.
    pub to: ClaimStatus,
}

/// Returns why `from` may become `to`, or the refusal naming both.
pub fn check(from: ClaimStatus, to: ClaimStatus) -> Result<&'static str, IllegalTransition> {
    TRANSITIONS
        .iter()
        .find(|(f, t, _)| *f == from && *t == to)
        .map(|(_, _, why)| *why)
        .ok_or(IllegalTransition { from, to })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_has_no_duplicates_and_void_is_final() {
        for (i, (f, t, _)) in TRANSITIONS.iter().enumerate() {
            assert!(
                !TRANSITIONS[..i]
                    .iter()
                    .any(|(f2, t2, _)| f2 == f && t2 == t),
                "{f:?} -> {t:?} listed twice"
            );
        }
        for to in ClaimStatus::ALL {
            assert!(check(Void, *to).is_err(), "VOID -> {to:?} must be refused");
        }
    }

    #[test]
    fn every_status_but_void_has_a_way_forward_and_every_status_is_reachable() {
        for s in ClaimStatus::ALL {
            if *s != Void {
                assert!(
                    TRANSITIONS.iter().any(|(f, _, _)| f == s),
                    "{s:?} is a dead end"
                );
            }
            if *s != Draft {
                assert!(
                    TRANSITIONS.iter().any(|(_, t, _)| t == s),
                    "{s:?} is unreachable"
                );
            }
        }
    }

    #[test]
    fn the_billing_path_is_legal_and_shortcuts_are_not() {
        let path = [Draft, Ready, Submitted, Accepted, PartiallyPaid, Paid];
        for pair in path.windows(2) {
            assert!(check(pair[0], pair[1]).is_ok(), "{:?}", pair);
        }
        let err = check(Draft, Paid).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a claim in status DRAFT cannot move to PAID"
        );
        assert!(
            check(Held, Submitted).is_err(),
            "a held claim is never sent"
        );
        assert!(check(Submitted, Draft).is_err());
        assert!(
            check(Rejected, Submitted).is_err(),
            "a rejection is corrected first"
        );
        for adjudicated in [Paid, PartiallyPaid, Denied] {
            for before in [Submitted, Accepted] {
                assert!(
                    check(adjudicated, before).is_ok(),
                    "reversal of {adjudicated:?}"
                );
            }
            assert!(check(adjudicated, Draft).is_err());
        }
    }
}
