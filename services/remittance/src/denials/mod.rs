//! The denial worklist: which posted claim payments and lines are denied, why (CARC and RARC with
//! their text), and what to do next, from one table by CARC ([`reasons.csv`](reasons.csv)).
//!
//! The rule (docs/services/remittance.md, "Denial worklist"), applied when a payment is posted:
//!
//! - A **denial adjustment** is a CAS triplet that withholds money the provider could otherwise
//!   collect: a CO, OA or PI adjustment unless its CARC's row says `denial=no` (contractual CO-45,
//!   sequestration, multiple procedure reductions, ...), or a PR adjustment whose CARC's row says
//!   `denial=yes` (PR-204 not covered: the patient is billed; PR-1/2/3 cost sharing is not a
//!   denial). CR corrections and reversals (CLP02 22) are never denials.
//! - A **denied claim** (CLP02 4) is one item for the whole claim, holding the denial adjustments
//!   of the claim and its lines. Otherwise each line with denial adjustments is one item, and the
//!   claim-level denial adjustments (if any) one more: a partially denied claim.
//! - The item's amount is the sum of its denial adjustments; its primary reason is the largest of
//!   them, which gives its category and suggested action (BILL_PATIENT for a PR reason; OTHER /
//!   APPEAL for a CARC the table does not know).
//!
//! Items are written in the posting transaction, once per (claim payment, line); a later paying
//! claim payment of the same claim resolves the claim's open items. [`rpc`] holds ListDenials and
//! UpdateDenial.

pub mod rpc;

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use medbill_domain::{EraId, Money, code_enum};

use crate::model::{Adjustment, ClaimPayment, ClaimPaymentId, ProcedureCode};

code_enum!(
    /// Broad cause of a denial.
    DenialCategory, "denial category", {
        /// Invalid or inconsistent codes, modifiers, bundling.
        Coding => "CODING",
        /// Coverage: not covered, terminated, another payer.
        Eligibility => "ELIGIBILITY",
        /// Missing or exceeded prior authorization.
        Authorization => "AUTHORIZATION",
        /// Filed too late.
        TimelyFiling => "TIMELY_FILING",
        /// Already adjudicated.
        Duplicate => "DUPLICATE",
        /// Not medically necessary.
        MedicalNecessity => "MEDICAL_NECESSITY",
        /// Information or documentation missing.
        MissingInformation => "MISSING_INFORMATION",
        /// Anything else.
        Other => "OTHER",
    }
);

code_enum!(
    /// Suggested next step for a denial.
    DenialAction, "denial action", {
        /// Correct the claim and send a replacement.
        CorrectAndResubmit => "CORRECT_AND_RESUBMIT",
        /// Appeal with documentation.
        Appeal => "APPEAL",
        /// The payer assigned the amount to the patient.
        BillPatient => "BILL_PATIENT",
        /// Nothing to recover.
        WriteOff => "WRITE_OFF",
    }
);

impl DenialAction {
    /// The action in plain words.
    pub fn describe(self) -> &'static str {
        match self {
            Self::CorrectAndResubmit => "correct the claim and resubmit",
            Self::Appeal => "appeal with documentation",
            Self::BillPatient => "bill the patient",
            Self::WriteOff => "write off",
        }
    }
}

code_enum!(
    /// Work state of a worklist item.
    DenialStatus, "denial status", {
        /// New, not yet worked.
        Open => "OPEN",
        /// Being worked.
        InProgress => "IN_PROGRESS",
        /// A corrected claim was sent.
        Resubmitted => "RESUBMITTED",
        /// An appeal was filed.
        Appealed => "APPEALED",
        /// Written off.
        WrittenOff => "WRITTEN_OFF",
        /// Resolved (paid later, or settled otherwise).
        Resolved => "RESOLVED",
    }
);

/// What the table says of one CARC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonRule {
    /// Whether an adjustment with this CARC is a denial (see the module docs for PR).
    pub denial: bool,
    /// Broad cause.
    pub category: DenialCategory,
    /// Suggested next step (for CO, OA and PI adjustments).
    pub action: DenialAction,
    /// Why, in plain words.
    pub why: String,
}

/// The table by CARC, parsed once from the embedded file.
static REASONS: LazyLock<HashMap<String, ReasonRule>> =
    LazyLock::new(|| parse_reasons(include_str!("reasons.csv")).unwrap_or_default());

/// Parses the reason table; `Err` names the first bad line (a unit test keeps the shipped file
/// clean, so the service never runs with a partial table).
fn parse_reasons(text: &str) -> Result<HashMap<String, ReasonRule>, String> {
    let mut out = HashMap::new();
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty());
    match lines.next() {
        Some((_, "carc,denial,category,action,why")) => {}
        other => return Err(format!("bad header: {other:?}")),
    }
    for (n, line) in lines {
        let at = |what: &str| format!("line {}: {what}", n + 1);
        let mut fields = line.splitn(5, ',');
        let (Some(carc), Some(denial), Some(category), Some(action), Some(why)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(at("needs 5 fields"));
        };
        let denial = match denial {
            "yes" => true,
            "no" => false,
            other => return Err(at(&format!("denial must be yes or no, not {other:?}"))),
        };
        let rule = ReasonRule {
            denial,
            category: category.parse().map_err(|e| at(&format!("{e}")))?,
            action: action.parse().map_err(|e| at(&format!("{e}")))?,
            why: why.to_owned(),
        };
        if out.insert(carc.to_owned(), rule).is_some() {
            return Err(at(&format!("CARC {carc} appears twice")));
        }
    }
    Ok(out)
}

/// Returns the table's row for a CARC.
pub fn reason_rule(carc: &str) -> Option<&'static ReasonRule> {
    REASONS.get(carc.trim())
}

/// How a denial adjustment is worked: its category and action, or `None` when the adjustment
/// is not a denial.
pub fn classify(a: &Adjustment) -> Option<(DenialCategory, DenialAction)> {
    let rule = reason_rule(&a.reason);
    match a.group.as_str() {
        "PR" => rule
            .filter(|r| r.denial)
            .map(|r| (r.category, DenialAction::BillPatient)),
        "CO" | "OA" | "PI" => match rule {
            Some(r) if !r.denial => None,
            Some(r) => Some((r.category, r.action)),
            None => Some((DenialCategory::Other, DenialAction::Appeal)),
        },
        _ => None,
    }
}

/// A worklist item to write with its posting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDenial {
    /// The claim payment it comes from.
    pub claim_payment_id: ClaimPaymentId,
    /// Its SVC position; 0 for the claim (or its claim-level adjustments).
    pub line_number: u32,
    /// The ERA.
    pub era_id: EraId,
    /// The matched claim.
    pub claim_id: String,
    /// CLP01.
    pub patient_control_number: String,
    /// CLP07.
    pub payer_claim_control_number: String,
    /// The ERA's payer identity.
    pub payer_id: String,
    /// CLP02.
    pub claim_status_code: String,
    /// REF*6R of the line; empty for the claim.
    pub line_control_number: String,
    /// The line's procedure; `None` for the claim.
    pub procedure: Option<ProcedureCode>,
    /// Date of service of the line (or the claim's first).
    pub service_date: Option<NaiveDate>,
    /// BPR16.
    pub payment_date: Option<NaiveDate>,
    /// The denial adjustments.
    pub adjustments: Vec<Adjustment>,
    /// The remark codes sent with them.
    pub remarks: Vec<String>,
    /// Sum of the denial adjustments.
    pub denied: Money,
    /// The largest denial adjustment's group, CARC, category and action.
    pub group: String,
    /// CARC of the primary adjustment.
    pub reason: String,
    /// Category of the primary adjustment.
    pub category: DenialCategory,
    /// Action of the primary adjustment.
    pub action: DenialAction,
}

/// A stored worklist item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// UUID v7.
    pub id: String,
    /// What posting found.
    pub item: NewDenial,
    /// Work state.
    pub status: DenialStatus,
    /// The last status change's note.
    pub note: String,
    /// The date age counts from: BPR16, or the day the ERA was received.
    pub age_from: NaiveDate,
    /// When created.
    pub created_at: DateTime<Utc>,
    /// When last changed.
    pub updated_at: DateTime<Utc>,
}

/// Filters of the worklist; `None` means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DenialFilter {
    /// Work state.
    pub status: Option<DenialStatus>,
    /// Payer identity.
    pub payer_id: Option<String>,
    /// Category of the primary reason.
    pub category: Option<DenialCategory>,
    /// Any denial adjustment with this CARC.
    pub reason: Option<String>,
    /// Matched claim.
    pub claim_id: Option<String>,
    /// ERA.
    pub era_id: Option<EraId>,
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before.
    pub created_to: Option<DateTime<Utc>>,
    /// Age counted from on or before this date (at least so many days old).
    pub age_from_on_or_before: Option<NaiveDate>,
    /// Age counted from on or after this date (at most so many days old).
    pub age_from_on_or_after: Option<NaiveDate>,
}

/// Count and amount of the items sharing a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DenialCount {
    /// `GROUP-CARC` or the payer id.
    pub key: String,
    /// Number of items.
    pub count: u64,
    /// Sum of their denied amounts.
    pub denied: Money,
}

/// The worklist items a posted payment makes (see the module docs); none for a reversal.
pub fn denials_of(payment: &ClaimPayment, claim_id: &str) -> Vec<NewDenial> {
    let p = &payment.payment;
    if p.is_reversal() {
        return Vec::new();
    }
    let denied_claim = p.status_code == "4";
    let base = |line_number: u32, adjustments: Vec<Adjustment>, remarks: Vec<String>| {
        let primary = adjustments
            .iter()
            .filter_map(|a| classify(a).map(|c| (a, c)))
            .fold(None, |best: Option<(&Adjustment, _)>, (a, c)| match best {
                Some((b, _)) if b.amount >= a.amount => best,
                _ => Some((a, c)),
            });
        let (group, reason, (category, action)) = match primary {
            Some((a, c)) => (a.group.clone(), a.reason.clone(), c),
            None => (
                String::new(),
                String::new(),
                (DenialCategory::Other, DenialAction::Appeal),
            ),
        };
        NewDenial {
            claim_payment_id: payment.id,
            line_number,
            era_id: payment.era_id,
            claim_id: claim_id.to_owned(),
            patient_control_number: p.patient_control_number.clone(),
            payer_claim_control_number: p.payer_claim_control_number.clone(),
            payer_id: payment.payer_id.clone(),
            claim_status_code: p.status_code.clone(),
            line_control_number: String::new(),
            procedure: None,
            service_date: p
                .statement_from
                .or_else(|| p.lines.iter().find_map(|l| l.service_date)),
            payment_date: payment.payment_date,
            denied: adjustments.iter().map(|a| a.amount).sum(),
            adjustments,
            remarks,
            group,
            reason,
            category,
            action,
        }
    };
    let denials = |adjustments: &[Adjustment]| -> Vec<Adjustment> {
        adjustments
            .iter()
            .filter(|a| classify(a).is_some())
            .cloned()
            .collect()
    };
    if denied_claim {
        let adjustments: Vec<Adjustment> = denials(&p.adjustments)
            .into_iter()
            .chain(p.lines.iter().flat_map(|l| denials(&l.adjustments)))
            .collect();
        let remarks = p
            .remarks
            .iter()
            .chain(p.lines.iter().flat_map(|l| l.remarks.iter()))
            .cloned()
            .collect();
        let mut item = base(0, adjustments, remarks);
        if item.adjustments.is_empty() {
            // A denial the payer explained with no denial reason: what it left unpaid and did
            // not assign to the patient.
            item.denied = p.charge - p.paid - p.patient_responsibility.unwrap_or_default();
        }
        return vec![item];
    }
    let mut out = Vec::new();
    let claim_level = denials(&p.adjustments);
    if !claim_level.is_empty() {
        out.push(base(0, claim_level, p.remarks.clone()));
    }
    for line in &p.lines {
        let adjustments = denials(&line.adjustments);
        if adjustments.is_empty() {
            continue;
        }
        let mut item = base(line.line_number, adjustments, line.remarks.clone());
        item.line_control_number = line.line_control_number.clone();
        item.procedure = Some(line.procedure.clone());
        item.service_date = line.service_date.or(item.service_date);
        out.push(item);
    }
    out.retain(|d| d.denied > Money::default());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use medbill_codesets::{CodeList, describe};

    #[test]
    fn the_shipped_table_parses_and_names_known_carcs() {
        let table = parse_reasons(include_str!("reasons.csv")).expect("reasons.csv parses");
        assert!(table.len() > 40);
        for carc in table.keys() {
            assert!(
                describe(CodeList::Carc, carc).is_some(),
                "CARC {carc} is not in the CARC list"
            );
        }
        assert_eq!(REASONS.len(), table.len());
    }

    #[test]
    fn a_bad_table_names_its_line() {
        let err = parse_reasons("carc,denial,category,action,why\n197,maybe,CODING,APPEAL,x\n")
            .unwrap_err();
        assert!(err.contains("line 2"), "{err}");
    }

    fn adj(group: &str, reason: &str) -> Adjustment {
        Adjustment {
            group: group.into(),
            reason: reason.into(),
            amount: Money::parse("10.00").unwrap(),
            quantity: None,
        }
    }

    #[test]
    fn classifies_by_group_and_carc() {
        assert_eq!(classify(&adj("CO", "45")), None, "contractual");
        assert_eq!(classify(&adj("PR", "2")), None, "coinsurance");
        assert_eq!(
            classify(&adj("PR", "204")),
            Some((DenialCategory::Eligibility, DenialAction::BillPatient))
        );
        assert_eq!(
            classify(&adj("CO", "204")),
            Some((DenialCategory::Eligibility, DenialAction::WriteOff))
        );
        assert_eq!(
            classify(&adj("CO", "197")),
            Some((DenialCategory::Authorization, DenialAction::Appeal))
        );
        assert_eq!(
            classify(&adj("CO", "4")),
            Some((DenialCategory::Coding, DenialAction::CorrectAndResubmit))
        );
        assert_eq!(
            classify(&adj("OA", "ZZ9")),
            Some((DenialCategory::Other, DenialAction::Appeal)),
            "an unknown CARC is worked as a denial"
        );
        assert_eq!(classify(&adj("CR", "197")), None);
    }
}
