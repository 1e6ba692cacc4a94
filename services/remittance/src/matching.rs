//! Matching an ERA claim payment to its claim, and its service lines to the claim's lines. Pure
//! rules, no I/O: the claims come from [`crate::directory`].
//!
//! - A claim payment matches the claim whose patient control number is CLP01, **confirmed** by the
//!   payer (the claim's payer is the ERA's payer identity) and the amount (CLP03, the charge the
//!   payer adjudicated, equals the claim's total charge; a reversal states it negated). Anything
//!   else is unmatched with the reason in plain words, for the unmatched worklist.
//! - A service line matches a claim line by REF*6R (our line control number) first; else by
//!   procedure (SVC01, or SVC06 when the payer restated the code), modifiers (the payer may drop a
//!   billed modifier, never add one), date of service and charge. Each claim line is taken once.
//!   A line that matches none is posted at claim level and flagged UNMATCHED.

use crate::directory::{ClaimLineView, ClaimView};
use crate::model::{LineMatch, LinePayment, NewClaimPayment};

/// Chooses the claim `payment` (from the ERA of `payer_id`) pays among the claims with its
/// CLP01, or says why none is confirmed.
pub fn match_claim<'a>(
    payment: &NewClaimPayment,
    payer_id: &str,
    candidates: &'a [ClaimView],
) -> Result<&'a ClaimView, String> {
    let pcn = &payment.patient_control_number;
    if candidates.is_empty() {
        return Err(format!("no claim has patient control number (CLP01) {pcn}"));
    }
    let same_payer: Vec<&ClaimView> = candidates
        .iter()
        .filter(|c| c.payer_id == payer_id)
        .collect();
    if same_payer.is_empty() {
        let billed: Vec<&str> = candidates.iter().map(|c| c.payer_id.as_str()).collect();
        return Err(format!(
            "the claim with patient control number {pcn} is billed to payer {}, not to this \
             ERA's payer {payer_id}",
            billed.join(", ")
        ));
    }
    let charge = payment.charge.abs();
    // The latest claim wins when several agree (a claim re-created with the same CLM01).
    same_payer
        .iter()
        .rev()
        .find(|c| c.total_charge.map(|t| t.abs()) == Some(charge))
        .copied()
        .ok_or_else(|| {
            let totals: Vec<String> = same_payer
                .iter()
                .map(|c| {
                    c.total_charge
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "?".into())
                })
                .collect();
            format!(
                "CLP03 charge {} does not equal the total charge {} of the claim with patient \
                 control number {pcn}",
                payment.charge,
                totals.join(", ")
            )
        })
}

/// One line's match: (SVC position, how, claim line number, claim line control number).
pub type LineOutcome = (u32, LineMatch, Option<u32>, String);

/// Matches each service line of a payment to a line of `claim` (see the module docs).
pub fn match_lines(lines: &[LinePayment], claim: &ClaimView) -> Vec<LineOutcome> {
    let mut taken = vec![false; claim.lines.len()];
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        let by_control =
            (!line.line_control_number.is_empty())
                .then(|| {
                    claim.lines.iter().enumerate().find(|(i, c)| {
                        !taken[*i] && c.line_control_number == line.line_control_number
                    })
                })
                .flatten();
        let found = match by_control {
            Some((i, c)) => Some((i, c, LineMatch::ControlNumber)),
            None => claim
                .lines
                .iter()
                .enumerate()
                .find(|(i, c)| !taken[*i] && same_service(line, c))
                .map(|(i, c)| (i, c, LineMatch::Procedure)),
        };
        match found {
            Some((i, c, how)) => {
                taken[i] = true;
                out.push((
                    line.line_number,
                    how,
                    Some(c.line_number),
                    c.line_control_number.clone(),
                ));
            }
            None => out.push((line.line_number, LineMatch::Unmatched, None, String::new())),
        }
    }
    out
}

/// Same procedure (as adjudicated or as billed per SVC06), modifiers a subset of the billed ones,
/// same date of service and charge when both sides have them.
fn same_service(line: &LinePayment, c: &ClaimLineView) -> bool {
    let billed = line.submitted_procedure.as_ref().unwrap_or(&line.procedure);
    let code_ok = c.procedure_code == billed.code || c.procedure_code == line.procedure.code;
    let modifiers_ok = billed.modifiers.iter().all(|m| c.modifiers.contains(m))
        || line
            .procedure
            .modifiers
            .iter()
            .all(|m| c.modifiers.contains(m));
    let date_ok = match (line.service_date, c.service_date) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    let charge_ok = c.charge.is_none_or(|charge| charge == line.charge.abs());
    code_ok && modifiers_ok && date_ok && charge_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ProcedureCode;
    use medbill_domain::Money;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    fn claim_line(n: u32, lcn: &str, code: &str, mods: &[&str], charge: &str) -> ClaimLineView {
        ClaimLineView {
            line_number: n,
            line_control_number: lcn.into(),
            procedure_code: code.into(),
            modifiers: mods.iter().map(|s| (*s).to_owned()).collect(),
            service_date: chrono::NaiveDate::from_ymd_opt(2026, 5, 4),
            charge: Some(m(charge)),
        }
    }

    fn claim(payer: &str, total: &str) -> ClaimView {
        ClaimView {
            id: format!("claim-{payer}-{total}"),
            patient_control_number: "PCN1".into(),
            payer_id: payer.into(),
            patient_ref: "p".into(),
            total_charge: Some(m(total)),
            service_date_from: None,
            lines: vec![
                claim_line(1, "L1", "99213", &["25"], "100.00"),
                claim_line(2, "L2", "81002", &[], "20.00"),
            ],
        }
    }

    fn payment(charge: &str) -> NewClaimPayment {
        NewClaimPayment {
            patient_control_number: "PCN1".into(),
            status_code: "1".into(),
            charge: m(charge),
            paid: m("0"),
            patient_responsibility: None,
            filing_indicator: String::new(),
            payer_claim_control_number: String::new(),
            facility_type_code: String::new(),
            frequency_code: String::new(),
            statement_from: None,
            statement_to: None,
            adjustments: vec![],
            remarks: vec![],
            lines: vec![],
        }
    }

    fn svc(n: u32, lcn: &str, code: &str, mods: &[&str], charge: &str) -> LinePayment {
        LinePayment {
            line_number: n,
            procedure: ProcedureCode {
                qualifier: "HC".into(),
                code: code.into(),
                modifiers: mods.iter().map(|s| (*s).to_owned()).collect(),
            },
            submitted_procedure: None,
            charge: m(charge),
            paid: m("0"),
            revenue_code: String::new(),
            units: None,
            service_date: chrono::NaiveDate::from_ymd_opt(2026, 5, 4),
            line_control_number: lcn.into(),
            allowed: None,
            adjustments: vec![],
            remarks: vec![],
            matched_by: LineMatch::Pending,
            claim_line_number: None,
            claim_line_control_number: String::new(),
        }
    }

    #[test]
    fn a_claim_is_confirmed_by_payer_and_charge() {
        let claims = [claim("OTHER", "120.00"), claim("P1", "120.00")];
        assert_eq!(
            match_claim(&payment("120.00"), "P1", &claims)
                .unwrap()
                .payer_id,
            "P1"
        );
        let reversal = payment("-120.00");
        assert!(
            match_claim(&reversal, "P1", &claims).is_ok(),
            "a reversal states the charge negated"
        );
        let err = match_claim(&payment("120.00"), "P2", &claims).unwrap_err();
        assert!(err.contains("not to this ERA's payer P2"), "{err}");
        let err = match_claim(&payment("99.00"), "P1", &claims).unwrap_err();
        assert!(err.contains("CLP03 charge 99.00"), "{err}");
        let err = match_claim(&payment("1.00"), "P1", &[]).unwrap_err();
        assert!(err.contains("no claim has patient control number"), "{err}");
    }

    #[test]
    fn lines_match_by_control_number_then_by_service() {
        let c = claim("P1", "120.00");
        let got = match_lines(
            &[
                // REF*6R wins even though the code was restated.
                svc(1, "L2", "81003", &[], "20.00"),
                // No REF*6R, modifier 25 dropped by the payer.
                svc(2, "", "99213", &[], "100.00"),
                // Matches nothing.
                svc(3, "", "99999", &[], "5.00"),
            ],
            &c,
        );
        assert_eq!(
            got,
            vec![
                (1, LineMatch::ControlNumber, Some(2), "L2".into()),
                (2, LineMatch::Procedure, Some(1), "L1".into()),
                (3, LineMatch::Unmatched, None, String::new()),
            ]
        );
    }

    #[test]
    fn a_restated_code_matches_by_the_billed_one_and_added_modifiers_do_not() {
        let c = claim("P1", "120.00");
        let mut restated = svc(1, "", "99214", &[], "100.00");
        restated.submitted_procedure = Some(ProcedureCode {
            qualifier: "HC".into(),
            code: "99213".into(),
            modifiers: vec!["25".into()],
        });
        let added = svc(2, "", "81002", &["59"], "20.00");
        let got = match_lines(&[restated, added], &c);
        assert_eq!(got[0].1, LineMatch::Procedure);
        assert_eq!(got[0].2, Some(1));
        assert_eq!(
            got[1].1,
            LineMatch::Unmatched,
            "a modifier not billed does not match"
        );
    }
}
