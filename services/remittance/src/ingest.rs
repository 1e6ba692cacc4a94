//! Turns the raw bytes of a received 835 into what the store keeps: a status, the payment summary, the
//! balance problems and the PLB adjustments, using `medbill_x12`'s typed 835 reader and balancing.
//!
//! Decisions:
//! - A file is **REJECTED** when it holds no 835 transaction set, or when the envelope or the 835 reader
//!   report an error-severity problem (a missing or malformed required element, a control-number
//!   mismatch, an amount with more than two decimals). The rejection reason names the X12 segment,
//!   element and byte position of the first such problem. The raw bytes are still stored.
//! - A file that parses is **UNBALANCED** when any line, claim or transaction balancing rule fails, else
//!   **RECEIVED** (posting to claims and collections, which moves it to POSTED, comes with the
//!   remittance issue).
//! - One ERA is one file. When a file holds several 835 sets, the summary (BPR, TRN, payer, payee) is the
//!   first set's, while the claim count, balance problems and PLB adjustments cover every set.

use medbill_domain::{Money, parse_x12_date};
use medbill_x12::balance::{self, Level};
use medbill_x12::transactions::era835::{Remittance, read_835};
use medbill_x12::{Document, Error as X12Error};

use crate::model::{
    BalanceLevel, BalanceProblem, EraStatus, EraSummary, NewEra, ProviderAdjustment,
};

/// Parses and balances `content`, returning the ERA to store (with status RECEIVED, UNBALANCED or
/// REJECTED).
pub fn parse_era(content: Vec<u8>, file_name: String) -> NewEra {
    match analyse(&content) {
        Ok(parsed) => NewEra {
            content,
            status: if parsed.balance_problems.is_empty() {
                EraStatus::Received
            } else {
                EraStatus::Unbalanced
            },
            rejection_reason: String::new(),
            file_name,
            summary: parsed.summary,
            balance_problems: parsed.balance_problems,
            provider_adjustments: parsed.provider_adjustments,
        },
        Err(reason) => NewEra {
            content,
            status: EraStatus::Rejected,
            rejection_reason: reason,
            file_name,
            summary: EraSummary::default(),
            balance_problems: Vec::new(),
            provider_adjustments: Vec::new(),
        },
    }
}

struct Parsed {
    summary: EraSummary,
    balance_problems: Vec<BalanceProblem>,
    provider_adjustments: Vec<ProviderAdjustment>,
}

/// Describes an X12 problem by position: "segment 4 (BPR02) at byte 107: ...".
fn describe(problem: &X12Error) -> String {
    format!("X12 {}: {}", problem.position, problem.kind)
}

fn whole_cents(amount: rust_decimal::Decimal, what: &str, at: &str) -> Result<Money, String> {
    let money = Money::from_decimal(amount);
    if money.is_whole_cents() && money.to_minor_units().is_ok() {
        Ok(money)
    } else {
        Err(format!(
            "X12 {at}: {what} {amount} is not a whole number of cents"
        ))
    }
}

fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_owned())
}

fn analyse(content: &[u8]) -> Result<Parsed, String> {
    let doc = Document::parse(content);
    if let Some(problem) = doc.problems.iter().find(|p| p.is_error()) {
        return Err(describe(problem));
    }
    let mut remittances: Vec<Remittance<'_>> = Vec::new();
    let mut other_set: Option<(String, String)> = None;
    for (_, _, set) in doc.sets() {
        if set.set_id() != "835" {
            if other_set.is_none() {
                let at = set
                    .st()
                    .map(|s| s.position().with_element(1).to_string())
                    .unwrap_or_else(|| "ST".to_owned());
                other_set = Some((set.set_id(), at));
            }
            continue;
        }
        let (remittance, problems) = read_835(set);
        if let Some(problem) = problems.iter().find(|p| p.is_error()) {
            return Err(describe(problem));
        }
        remittances.push(remittance);
    }
    let Some(first) = remittances.first() else {
        return Err(match other_set {
            Some((id, at)) => format!("X12 {at}: transaction set {id:?} is not an 835"),
            None => "no X12 transaction set (ST..SE) found; expected an 835".to_owned(),
        });
    };

    let bpr_at = format!("segment {} (BPR02)", first.payment.segment_index);
    let payer_id = first
        .payer
        .references
        .iter()
        .find(|r| r.qualifier == "2U")
        .and_then(|r| non_empty(&r.value))
        .or_else(|| {
            first
                .trace
                .as_ref()
                .and_then(|t| t.originator.as_deref())
                .map(|o| o.strip_prefix('1').unwrap_or(o))
                .and_then(non_empty)
        });
    let payment_date = match first.payment.date.as_deref().and_then(non_empty) {
        Some(d) => Some(
            parse_x12_date(&d)
                .map_err(|e| format!("X12 segment {} (BPR16): {e}", first.payment.segment_index))?,
        ),
        None => None,
    };
    let summary = EraSummary {
        handling_code: non_empty(&first.payment.handling),
        payer_name: non_empty(&first.payer.name),
        payer_id,
        payee_name: non_empty(&first.payee.name),
        payee_npi: first.payee.npi().and_then(non_empty),
        payment_amount: Some(whole_cents(
            first.payment.amount,
            "payment amount",
            &bpr_at,
        )?),
        credit_debit: non_empty(&first.payment.credit_debit),
        payment_method: non_empty(&first.payment.method),
        payment_date,
        trace_number: first.trace.as_ref().and_then(|t| non_empty(&t.number)),
        claim_count: u32::try_from(remittances.iter().map(|r| r.claim_count).sum::<usize>())
            .map_err(|_| "too many claim payments in one file".to_owned())?,
    };

    let mut balance_problems = Vec::new();
    let mut provider_adjustments = Vec::new();
    for r in &remittances {
        let mut found = Vec::new();
        for claim in &r.claims {
            let start = found.len();
            balance::balance_claim(claim, &mut found);
            for p in found.iter().skip(start) {
                let line_control_number = match (p.level, p.line) {
                    (Level::Line, Some(n)) => n
                        .checked_sub(1)
                        .and_then(|i| claim.services.get(i))
                        .and_then(|s| s.line_control_number())
                        .unwrap_or_default()
                        .to_owned(),
                    _ => String::new(),
                };
                balance_problems.push(convert(p, line_control_number)?);
            }
        }
        if let Some(p) = balance::balance_transaction(r, r.claims_paid_total) {
            balance_problems.push(convert(&p, String::new())?);
        }
        for a in &r.provider_adjustments {
            let at = format!("segment {} (PLB)", a.segment_index);
            let fiscal_period_date = non_empty(&a.fiscal_period_date)
                .map(|d| parse_x12_date(&d).map_err(|e| format!("X12 {at}: PLB02 {e}")))
                .transpose()?;
            provider_adjustments.push(ProviderAdjustment {
                provider_id: a.provider_id.to_string(),
                fiscal_period_date,
                reason: a.reason.to_string(),
                reference: a.reference.as_deref().unwrap_or_default().to_owned(),
                amount: whole_cents(a.amount, "PLB amount", &at)?,
            });
        }
    }
    Ok(Parsed {
        summary,
        balance_problems,
        provider_adjustments,
    })
}

/// Maps a `medbill_x12` balance problem to the stored shape: `expected` is the amount the file states,
/// `actual` the amount computed from the other elements, `difference` = expected - actual (proto
/// `medbill.common.v1.BalanceProblem`).
fn convert(
    p: &balance::BalanceProblem,
    line_control_number: String,
) -> Result<BalanceProblem, String> {
    let at = format!("segment {}", p.segment_index);
    Ok(BalanceProblem {
        level: match p.level {
            Level::Line => BalanceLevel::Line,
            Level::Claim => BalanceLevel::Claim,
            Level::Transaction => BalanceLevel::Transaction,
        },
        claim_ref: p.claim.clone().unwrap_or_default(),
        line_control_number,
        line_number: p.line.and_then(|n| u32::try_from(n).ok()),
        expected: whole_cents(p.actual, "stated amount", &at)?,
        actual: whole_cents(p.expected, "computed amount", &at)?,
        difference: whole_cents(p.difference, "difference", &at)?,
        message: p.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BALANCED: &[u8] = include_bytes!("../tests/fixtures/medicare-part-a.835");
    const UNBALANCED: &[u8] = include_bytes!("../tests/fixtures/medicare-part-a-unbalanced.835");
    const BAD_AMOUNT: &[u8] = include_bytes!("../tests/fixtures/medicare-part-a-bad-amount.835");
    const BAD_DATE: &[u8] = include_bytes!("../tests/fixtures/managed-care.835");

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    #[test]
    fn a_balanced_835_is_summarised() {
        let era = parse_era(BALANCED.to_vec(), "a.835".into());
        assert_eq!(era.status, EraStatus::Received, "{}", era.rejection_reason);
        let s = &era.summary;
        assert_eq!(s.handling_code.as_deref(), Some("C"));
        assert_eq!(
            s.payer_name.as_deref(),
            Some("INSURANCE COMPANY OF TIMBUCKTU")
        );
        assert_eq!(s.payer_id.as_deref(), Some("999"), "REF*2U wins over TRN03");
        assert_eq!(s.payee_name.as_deref(), Some("REGIONAL HOPE HOSPITAL"));
        assert_eq!(s.payee_npi.as_deref(), Some("6543210903"));
        assert_eq!(s.payment_amount, Some(m("150000.00")));
        assert_eq!(s.credit_debit.as_deref(), Some("C"));
        assert_eq!(s.payment_method.as_deref(), Some("ACH"));
        assert_eq!(
            s.payment_date.map(|d| d.to_string()).as_deref(),
            Some("2002-09-13")
        );
        assert_eq!(s.trace_number.as_deref(), Some("12345"));
        assert_eq!(s.claim_count, 2);
        assert!(era.balance_problems.is_empty());
        assert_eq!(era.provider_adjustments.len(), 1);
        let plb = &era.provider_adjustments[0];
        assert_eq!((plb.reason.as_str(), plb.reference.as_str()), ("CV", "CP"));
        assert_eq!(plb.amount, m("-1.27"));
        assert_eq!(
            plb.fiscal_period_date.map(|d| d.to_string()).as_deref(),
            Some("2002-12-31")
        );
    }

    #[test]
    fn an_unbalanced_835_names_the_claim_and_the_transaction() {
        let era = parse_era(UNBALANCED.to_vec(), String::new());
        assert_eq!(era.status, EraStatus::Unbalanced);
        assert_eq!(era.balance_problems.len(), 2, "{:?}", era.balance_problems);
        let claim = &era.balance_problems[0];
        assert_eq!(claim.level, BalanceLevel::Claim);
        assert_eq!(claim.claim_ref, "777777");
        assert_eq!(claim.expected, m("11980.30"), "CLP04 as stated");
        assert_eq!(claim.actual, m("11980.33"), "CLP03 - CAS");
        assert_eq!(claim.difference, m("-0.03"));
        let set = &era.balance_problems[1];
        assert_eq!(set.level, BalanceLevel::Transaction);
        assert_eq!(set.claim_ref, "");
        assert_eq!(set.expected, m("150000.00"), "BPR02 as stated");
        // 138018.40 + 11980.30 - (-1.27)
        assert_eq!(set.actual, m("149999.97"));
        assert_eq!(set.difference, m("0.03"));
        assert!(set.message.contains("BPR02"), "{}", set.message);
    }

    #[test]
    fn a_malformed_amount_is_rejected_naming_the_segment() {
        let era = parse_era(BAD_AMOUNT.to_vec(), String::new());
        assert_eq!(era.status, EraStatus::Rejected);
        assert!(
            era.rejection_reason.contains("segment 4 (BPR02)"),
            "{}",
            era.rejection_reason
        );
        assert_eq!(era.content, BAD_AMOUNT, "the raw bytes are kept");
    }

    #[test]
    fn an_impossible_payment_date_is_rejected_naming_bpr16() {
        let era = parse_era(BAD_DATE.to_vec(), String::new());
        assert_eq!(era.status, EraStatus::Rejected);
        assert!(
            era.rejection_reason.contains("BPR16"),
            "{}",
            era.rejection_reason
        );
    }

    #[test]
    fn other_transaction_sets_and_garbage_are_rejected() {
        let not_x12 = parse_era(b"hello, this is not X12".to_vec(), String::new());
        assert_eq!(not_x12.status, EraStatus::Rejected);
        assert!(!not_x12.rejection_reason.is_empty());

        let a270 = String::from_utf8_lossy(BALANCED)
            .replace("ST*835*1234~", "ST*270*1234~")
            .into_bytes();
        assert_ne!(a270, BALANCED);
        let era = parse_era(a270, String::new());
        assert_eq!(era.status, EraStatus::Rejected);
        assert!(
            era.rejection_reason.contains("270"),
            "{}",
            era.rejection_reason
        );
    }
}
