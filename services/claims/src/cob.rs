//! Coordination of benefits: the secondary claim made automatically from a primary's
//! adjudication.
//!
//! When ApplyAdjudication applies a primary payer's adjudication (CLP02 1 or 19) that is not a
//! denial and leaves a balance (charge - paid - CO adjustments > 0), and the patient has a
//! SECONDARY coverage in the eligibility service in force on every date of service, a secondary
//! claim is created in the same transaction: frequency 1, CLM01 derived from the primary's (its
//! first 17 characters and "-S2"), billed to the secondary coverage and its payer, carrying the
//! primary's paid amount, adjudication date and CAS adjustments for the 837's 2320/2330/2430
//! loops ([`crate::details::OtherPayerSnapshot`]), scrubbed (READY or HELD), and linked to the
//! primary both ways. Otherwise the primary records why no secondary claim was made
//! (`secondary_claim_note`).
//!
//! **Why the coverage is read before the transaction.** The eligibility service is the only
//! source of coverages and is reached over gRPC on the caller's token; a network call must never
//! run inside the adjudication's transaction (on SQLite it would hold the only write lock). So
//! ApplyAdjudication asks eligibility first, outside any transaction, only when the adjudication
//! could need a secondary (a primary's, not denied, with a balance), then decides and writes
//! everything in the one transaction that stores the adjudication. If eligibility cannot be
//! reached, ApplyAdjudication answers UNAVAILABLE and writes nothing: the remittance outbox
//! redelivers it, and the adjudication and its secondary claim land together, once per key. A
//! durable job with a background worker was not chosen because a background task holds no
//! caller token to ask eligibility with.
//!
//! Limits: the secondary repeats the primary's lines and carries the adjudication in force when
//! it was made; a later reversal of the primary does not change or void the secondary (the
//! billing office corrects it), and a primary gets at most one secondary claim.

use chrono::NaiveDate;
use medbill_domain::{Money, PatientControlNumber};
use medbill_proto::eligibility::v1 as elig;

use crate::adjudication::{Adjudication, AdjustmentGroup, AppliedAdjudication, ClaimPaymentStatus};
use crate::details::wire::coverage_snapshot;
use crate::details::{OtherPayerAdjustment, OtherPayerLine, OtherPayerSnapshot, SELF};
use crate::model::{Claim, ClaimStatus, FrequencyCode, NewClaim, NewClaimLine};

/// Characters of the primary's CLM01 kept in the secondary's ("-S2" makes 20).
pub const DERIVED_BASE_LEN: usize = 17;

/// Why a primary has no secondary claim.
pub mod notes {
    /// The primary denied the claim.
    pub const DENIED: &str =
        "no secondary claim: the primary payer denied the claim; correct or appeal it first";
    /// Nothing left to bill.
    pub const NO_BALANCE: &str =
        "no secondary claim: the primary payer's adjudication left no balance to bill";
    /// No secondary coverage.
    pub const NO_COVERAGE: &str = "no secondary claim: the patient has no secondary coverage in \
                                   force on the dates of service";
}

/// What coordination of benefits does after an adjudication.
#[derive(Debug, Clone, PartialEq)]
pub enum SecondaryPlan {
    /// Nothing: not a primary's adjudication, or the primary already has a secondary.
    Nothing,
    /// Record on the primary why no secondary claim is made.
    Note(&'static str),
    /// Create the secondary claim billed to this coverage.
    Create(Box<elig::Coverage>),
}

/// Tells whether an adjudication is a primary payer's (CLP02 1 or 19).
pub fn is_primary(status: ClaimPaymentStatus) -> bool {
    matches!(
        status,
        ClaimPaymentStatus::ProcessedPrimary | ClaimPaymentStatus::ForwardedPrimary
    )
}

/// The balance the primary left to bill: charge - paid - CO adjustments (claim and line level);
/// `None` on overflow.
pub fn remaining_balance(a: &Adjudication) -> Option<Money> {
    let contractual = a
        .all_adjustments()
        .filter(|adj| adj.group == AdjustmentGroup::Co)
        .try_fold(Money::ZERO, |acc, adj| acc.checked_add(adj.amount))?;
    a.charge.checked_sub(a.paid)?.checked_sub(contractual)
}

/// Decides what to do before any coverage is read, from the adjudication and the status it gives
/// the claim (`outcome`): `Some(plan)` when that alone decides, `None` when the patient's
/// coverages must be read.
pub fn decide_without_coverages(
    claim: &Claim,
    a: &Adjudication,
    outcome: Option<ClaimStatus>,
) -> Option<SecondaryPlan> {
    if claim.coordination.secondary_claim_id.is_some()
        || claim.coordination.primary_claim_id.is_some()
        || claim.frequency_code == FrequencyCode::Void
        || a.status_code == ClaimPaymentStatus::Reversal
    {
        return Some(SecondaryPlan::Nothing);
    }
    // A denial (CLP02 4 or 23, or nothing paid with only denials) of a claim that is no
    // secondary itself is the primary's.
    if outcome == Some(ClaimStatus::Denied) {
        return Some(SecondaryPlan::Note(notes::DENIED));
    }
    if !is_primary(a.status_code) {
        return Some(SecondaryPlan::Nothing);
    }
    match remaining_balance(a) {
        Some(b) if b.is_positive() => None,
        _ => Some(SecondaryPlan::Note(notes::NO_BALANCE)),
    }
}

/// Picks the secondary coverage among the patient's: order SECONDARY, not the claim's own
/// coverage, in force on every date of service of the claim (the first such in id order).
pub fn pick_secondary<'a>(
    claim: &Claim,
    coverages: &'a [elig::Coverage],
) -> Option<&'a elig::Coverage> {
    coverages.iter().find(|c| {
        c.coverage_order == elig::CoverageOrder::Secondary as i32
            && c.id != claim.coverage_id
            && c.patient_ref == claim.patient_ref
            && in_force(c, claim.service_date_from, claim.service_date_to)
    })
}

fn in_force(c: &elig::Coverage, from: NaiveDate, to: NaiveDate) -> bool {
    let Ok(effective) = medbill_domain::parse_iso_date(&c.effective_date) else {
        return false;
    };
    let ends_after = match c.termination_date.as_str() {
        "" => true,
        raw => medbill_domain::parse_iso_date(raw).is_ok_and(|end| end >= to),
    };
    effective <= from && ends_after
}

/// The plan once the patient's coverages are known.
pub fn decide(claim: &Claim, coverages: &[elig::Coverage]) -> SecondaryPlan {
    match pick_secondary(claim, coverages) {
        Some(c) => SecondaryPlan::Create(Box::new(c.clone())),
        None => SecondaryPlan::Note(notes::NO_COVERAGE),
    }
}

/// The CLM01 candidates of a secondary claim, in the order tried: the primary's first 17
/// characters and "-S2", then its first 16 and "-S3" .. "-S9".
pub fn derived_patient_control_numbers(primary: &PatientControlNumber) -> Vec<String> {
    let pcn = primary.as_str();
    let mut out = vec![format!(
        "{}-S2",
        pcn.chars().take(DERIVED_BASE_LEN).collect::<String>()
    )];
    let base: String = pcn.chars().take(DERIVED_BASE_LEN - 1).collect();
    out.extend((3..=9).map(|n| format!("{base}-S{n}")));
    out
}

fn adjustment(a: &crate::adjudication::Adjustment) -> OtherPayerAdjustment {
    OtherPayerAdjustment {
        group: a.group.as_str().to_owned(),
        reason: a.reason.clone(),
        amount: a.amount.as_decimal(),
        quantity: a.quantity,
    }
}

/// The primary payer and its adjudication as the secondary claim carries them.
pub fn other_payer_snapshot(primary: &Claim, applied: &AppliedAdjudication) -> OtherPayerSnapshot {
    let a = &applied.adjudication;
    let d = &primary.details;
    let coverage = d.coverage.clone().unwrap_or_default();
    let relationship = d.relationship().to_owned();
    let (last, first) = if relationship == SELF {
        d.patient
            .as_ref()
            .map(|p| (p.last_name.clone(), p.first_name.clone()))
            .unwrap_or_default()
    } else if let Some(s) = &d.subscriber {
        (s.last_name.clone(), s.first_name.clone())
    } else {
        (
            coverage.subscriber_last_name.clone(),
            coverage.subscriber_first_name.clone(),
        )
    };
    // Each claim line takes the adjudicated line with its control number, else the one at its
    // position when the procedure agrees.
    let lines = primary
        .lines
        .iter()
        .enumerate()
        .filter_map(|(i, line)| {
            let adjudicated = a
                .lines
                .iter()
                .find(|l| l.line_control_number.as_deref() == Some(&line.line_control_number))
                .or_else(|| {
                    a.lines
                        .get(i)
                        .filter(|l| l.line_control_number.is_none())
                        .filter(|l| l.procedure_code == line.procedure_code)
                })?;
            Some(OtherPayerLine {
                line_number: line.line_number,
                procedure_code: adjudicated.procedure_code.clone(),
                modifiers: line.modifiers.clone(),
                revenue_code: line.revenue_code.clone(),
                paid: adjudicated.paid.as_decimal(),
                units: adjudicated.units.unwrap_or(line.units),
                adjustments: adjudicated.adjustments.iter().map(adjustment).collect(),
            })
        })
        .collect();
    let pr = a.patient_responsibility_total().unwrap_or(Money::ZERO);
    OtherPayerSnapshot {
        payer_id: primary.payer_id.clone(),
        payer_name: if coverage.payer_name.is_empty() {
            primary.payer_id.clone()
        } else {
            coverage.payer_name.clone()
        },
        payer_responsibility: "P".to_owned(),
        relationship,
        group_number: coverage.group_number.clone(),
        member_id: coverage.member_id.clone(),
        subscriber_last_name: last,
        subscriber_first_name: first,
        paid: a.paid.as_decimal(),
        remaining_patient_liability: pr.is_positive().then(|| pr.as_decimal()),
        adjudication_date: Some(
            a.payment_date
                .unwrap_or_else(|| applied.applied_at.date_naive()),
        ),
        adjustments: a.adjustments.iter().map(adjustment).collect(),
        lines,
    }
}

/// The secondary claim of `primary`, billed to `coverage`, with CLM01 `pcn`.
pub fn secondary_claim(
    primary: &Claim,
    coverage: &elig::Coverage,
    applied: &AppliedAdjudication,
    pcn: PatientControlNumber,
) -> NewClaim {
    let mut details = primary.details.clone();
    // The subscriber is the secondary coverage's: its relationship and names apply.
    details.relationship_to_subscriber = None;
    details.subscriber = None;
    details.coverage = Some(coverage_snapshot(coverage));
    details.other_payer = Some(other_payer_snapshot(primary, applied));
    NewClaim {
        patient_control_number: pcn,
        claim_type: primary.claim_type,
        frequency_code: FrequencyCode::Original,
        payer_claim_control_number: None,
        coverage_id: coverage.id.clone(),
        payer_id: coverage.payer_id.clone(),
        patient_ref: primary.patient_ref.clone(),
        billing_provider_npi: primary.billing_provider_npi.clone(),
        rendering_provider_npi: primary.rendering_provider_npi.clone(),
        place_of_service: primary.place_of_service.clone(),
        facility_type_code: primary.facility_type_code.clone(),
        diagnoses: primary.diagnoses.clone(),
        lines: primary
            .lines
            .iter()
            .map(|l| NewClaimLine {
                line_control_number: None,
                procedure_code: l.procedure_code.clone(),
                modifiers: l.modifiers.clone(),
                revenue_code: l.revenue_code.clone(),
                charge: l.charge,
                units: l.units,
                service_date: l.service_date,
                diagnosis_pointers: l.diagnosis_pointers.clone(),
                prior_authorization_number: l.prior_authorization_number.clone(),
                referral_number: l.referral_number.clone(),
            })
            .collect(),
        total_charge: Some(primary.total_charge),
        service_date_from: Some(primary.service_date_from),
        service_date_to: Some(primary.service_date_to),
        encounter_ref: primary.encounter_ref.clone(),
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adjudication::{Adjustment, LineAdjudication};
    use chrono::Utc;

    fn money(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    fn adj(group: AdjustmentGroup, reason: &str, amount: &str) -> Adjustment {
        Adjustment {
            group,
            reason: reason.into(),
            amount: money(amount),
            quantity: None,
        }
    }

    fn adjudication(code: &str, paid: &str, adjustments: Vec<Adjustment>) -> Adjudication {
        Adjudication {
            era_id: "era".into(),
            claim_payment_id: "cp".into(),
            status_code: code.parse().unwrap(),
            charge: money("200.00"),
            paid: money(paid),
            patient_responsibility: None,
            payer_claim_control_number: None,
            adjustments: vec![],
            remarks: vec![],
            lines: vec![LineAdjudication {
                line_control_number: None,
                procedure_code: "99213".into(),
                charge: money("200.00"),
                paid: money(paid),
                allowed: None,
                units: None,
                adjustments,
                remarks: vec![],
            }],
            payment_date: None,
        }
    }

    fn coverage(order: elig::CoverageOrder, from: &str, to: &str) -> elig::Coverage {
        elig::Coverage {
            id: format!("cov-{from}-{to}"),
            patient_ref: "pat".into(),
            payer_id: "SIMHMO".into(),
            coverage_order: order.into(),
            effective_date: from.into(),
            termination_date: to.into(),
            ..Default::default()
        }
    }

    fn claim() -> Claim {
        let now = Utc::now();
        let dos = NaiveDate::from_ymd_opt(2026, 5, 4).unwrap();
        Claim {
            id: medbill_domain::ClaimId::new(),
            patient_control_number: PatientControlNumber::parse("PCN-1").unwrap(),
            claim_type: crate::model::ClaimType::Professional,
            status: ClaimStatus::Accepted,
            frequency_code: FrequencyCode::Original,
            payer_claim_control_number: None,
            coverage_id: "cov-primary".into(),
            payer_id: "SIMPPO".into(),
            patient_ref: "pat".into(),
            billing_provider_npi: medbill_domain::Npi::parse("1234567893").unwrap(),
            rendering_provider_npi: None,
            place_of_service: Some("11".into()),
            facility_type_code: None,
            diagnoses: vec!["E119".into()],
            lines: vec![],
            total_charge: money("200.00"),
            service_date_from: dos,
            service_date_to: dos,
            encounter_ref: None,
            details: Default::default(),
            submission_batch_id: None,
            created_at: now,
            updated_at: now,
            scrub_findings: vec![],
            original_claim_id: None,
            superseded_by_claim_id: None,
            adjudication: None,
            coordination: Default::default(),
        }
    }

    use AdjustmentGroup::{Co, Oa, Pr};

    #[test]
    fn the_balance_is_what_neither_payment_nor_contract_covers() {
        let a = adjudication(
            "1",
            "120.00",
            vec![adj(Co, "45", "50.00"), adj(Pr, "2", "30.00")],
        );
        assert_eq!(remaining_balance(&a), Some(money("30.00")));
        let full = adjudication("1", "150.00", vec![adj(Co, "45", "50.00")]);
        assert_eq!(remaining_balance(&full), Some(Money::ZERO));
        // An OA adjustment is not written off: it stays to bill.
        let other = adjudication("1", "150.00", vec![adj(Oa, "23", "50.00")]);
        assert_eq!(remaining_balance(&other), Some(money("50.00")));
    }

    #[test]
    fn the_adjudication_alone_decides_denials_balances_and_secondaries() {
        let c = claim();
        let balance = adjudication("1", "120.00", vec![adj(Pr, "2", "80.00")]);
        assert_eq!(
            decide_without_coverages(&c, &balance, balance.outcome()),
            None
        );
        let forwarded = adjudication("19", "120.00", vec![adj(Pr, "2", "80.00")]);
        assert_eq!(
            decide_without_coverages(&c, &forwarded, forwarded.outcome()),
            None
        );
        let denied = adjudication("4", "0", vec![adj(Co, "50", "200.00")]);
        assert_eq!(
            decide_without_coverages(&c, &denied, denied.outcome()),
            Some(SecondaryPlan::Note(notes::DENIED))
        );
        let none_left = adjudication("1", "150.00", vec![adj(Co, "45", "50.00")]);
        assert_eq!(
            decide_without_coverages(&c, &none_left, none_left.outcome()),
            Some(SecondaryPlan::Note(notes::NO_BALANCE))
        );
        // A secondary payer's own adjudication makes nothing.
        let as_secondary = adjudication("2", "80.00", vec![]);
        assert_eq!(
            decide_without_coverages(&c, &as_secondary, as_secondary.outcome()),
            Some(SecondaryPlan::Nothing)
        );
        let mut secondary = claim();
        secondary.coordination.primary_claim_id = Some(medbill_domain::ClaimId::new());
        assert_eq!(
            decide_without_coverages(&secondary, &balance, balance.outcome()),
            Some(SecondaryPlan::Nothing)
        );
    }

    #[test]
    fn the_secondary_is_in_force_on_every_date_of_service() {
        let c = claim(); // 2026-05-04
        use elig::CoverageOrder::{Primary, Secondary};
        let ended = coverage(Secondary, "2025-01-01", "2026-05-03");
        let later = coverage(Secondary, "2026-05-05", "");
        let primary = coverage(Primary, "2026-01-01", "");
        assert_eq!(
            decide(&c, &[ended, later, primary]),
            SecondaryPlan::Note(notes::NO_COVERAGE)
        );
        let good = coverage(Secondary, "2026-01-01", "2026-05-04");
        assert_eq!(
            decide(&c, std::slice::from_ref(&good)),
            SecondaryPlan::Create(Box::new(good))
        );
    }

    #[test]
    fn derived_patient_control_numbers_fit_clm01() {
        let long = PatientControlNumber::parse("ABCDEFGHIJKLMNOPQRST").unwrap();
        let all = derived_patient_control_numbers(&long);
        assert_eq!(all[0], "ABCDEFGHIJKLMNOPQ-S2");
        assert_eq!(all[1], "ABCDEFGHIJKLMNOP-S3");
        assert!(all.iter().all(|p| p.len() <= 20));
        let short = PatientControlNumber::parse("PCN-1").unwrap();
        assert_eq!(derived_patient_control_numbers(&short)[0], "PCN-1-S2");
    }
}
