//! Adjudication of one accepted claim from the catalog: what each line is allowed, what the plan
//! pays and what the patient owes, with the reason codes an 835 carries.
//!
//! Each line is decided in this order; the first rule that applies decides it:
//!
//! | rule | adjustment | remark |
//! |---|---|---|
//! | the claim reached the payer more than `timely_filing_days` after its first date of service | CO-29, the whole charge | |
//! | the line's date of service is on or after the member's `retro_terminated_from` | CO-27 | N30 |
//! | the code is in the plan's `not_covered_procedures` | PR-204 (the patient's) | N130 |
//! | the code is in the plan's `prior_authorization` and the claim has no REF*G1 | CO-197 | M62 |
//! | a modifier the fee schedule entry does not list | CO-4 | N823 |
//! | the same member, code, modifiers and date were paid on another claim | OA-18 (CARC 18 is used with group OA only) | N111 |
//! | otherwise | priced (below) | |
//!
//! Pricing: allowed = `min(charge, fee x units)` from the payer's `procedures`, or
//! `charge x unlisted_rate` for a code not listed (rounded to cents); the rest is CO-45. Of the
//! allowed amount the patient owes the copay of the code's service type (PR-3) when the member's
//! tier has one, else the deductible still open (PR-1) then coinsurance on the rest (PR-2); the
//! patient's share stops at the out-of-pocket maximum (coinsurance is reduced first, then the
//! copay, then the deductible). Individual and family accumulators both limit, and move line by
//! line, so a later line of the same claim sees what an earlier one met.

use chrono::NaiveDate;
use medbill_domain::{Money, Rate};

use crate::catalog::{Catalog, Member, Met, Payer};
use crate::claim_rules::ReceivedClaim;

/// One CAS adjustment: group, reason, amount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adjust {
    /// CAS01: CO, PR, OA.
    pub group: &'static str,
    /// CARC.
    pub reason: &'static str,
    /// The amount.
    pub amount: Money,
}

/// One decided service line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineDecision {
    /// SVC02.
    pub charge: Money,
    /// AMT*B6 (zero for a denied line).
    pub allowed: Money,
    /// SVC03.
    pub paid: Money,
    /// CAS of the line.
    pub adjustments: Vec<Adjust>,
    /// LQ*HE remark codes.
    pub remarks: Vec<&'static str>,
    /// Whether the line was priced (not denied).
    pub priced: bool,
}

/// One decided claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimDecision {
    /// One per claim line, in order.
    pub lines: Vec<LineDecision>,
    /// What the patient's deductible met rises by (PR-1).
    pub deductible: Money,
    /// What the patient's out-of-pocket met rises by (PR-1 + PR-2 + PR-3).
    pub out_of_pocket: Money,
}

impl ClaimDecision {
    /// CLP04.
    pub fn paid(&self) -> Money {
        self.lines.iter().map(|l| l.paid).sum()
    }

    /// CLP05: every PR adjustment.
    pub fn patient_responsibility(&self) -> Money {
        self.lines
            .iter()
            .flat_map(|l| &l.adjustments)
            .filter(|a| a.group == "PR")
            .map(|a| a.amount)
            .sum()
    }

    /// CLP02: 1 processed as primary, 4 denied (nothing paid and nothing owed by the patient).
    pub fn status(&self) -> &'static str {
        if self.paid().is_zero() && self.patient_responsibility().is_zero() {
            "4"
        } else {
            "1"
        }
    }
}

/// Tells whether a service was already paid on another claim (duplicate detection).
pub trait PaidServices {
    /// True when `member`'s `code` with `modifiers` on `date` is paid on a claim still standing.
    fn already_paid(&self, member: &str, code: &str, modifiers: &[String], date: NaiveDate)
    -> bool;
}

/// Adjudicates `claim` received on `received`, starting from the member's accumulators as `met`
/// gives them. Does not move them: the caller applies [`ClaimDecision::deductible`] and
/// [`ClaimDecision::out_of_pocket`] once the payment is written.
pub fn adjudicate(
    catalog: &Catalog,
    claim: &ReceivedClaim,
    received: NaiveDate,
    met: &dyn Fn(&Member) -> Met,
    paid: &dyn PaidServices,
) -> ClaimDecision {
    let payer = catalog.payer(&claim.payer_id);
    let member = payer.and_then(|p| p.member(&claim.member_id));
    let (Some(payer), Some(member)) = (payer, member) else {
        // The front end accepts only known payers and members; deny anything else outright.
        return denied_all(claim, "OA", "109", None);
    };
    let first_day = claim.service_date.from;
    if (received - first_day).num_days() > i64::from(payer.entry.timely_filing_days) {
        return denied_all(claim, "CO", "29", None);
    }
    let mut met = met(member);
    let start = met;
    let lines = claim
        .lines
        .iter()
        .map(|line| {
            let date = line.service_date.map_or(first_day, |d| d.from);
            let code = line.procedure.code.as_str();
            let plan = &member.plan.entry;
            let deny = |group, reason, remark: Option<&'static str>| {
                denied_line(Money::from_decimal(line.charge), group, reason, remark)
            };
            if !member.active_on(date) {
                return deny("CO", "27", Some("N30"));
            }
            if plan.not_covered_procedures.iter().any(|c| c == code) {
                return deny("PR", "204", Some("N130"));
            }
            if plan.prior_authorization.iter().any(|c| c == code)
                && claim.prior_authorization.is_none()
            {
                return deny("CO", "197", Some("M62"));
            }
            let fee = payer.procedure(code);
            if let Some(allowed) = fee.and_then(|f| f.modifiers.as_ref())
                && line
                    .procedure
                    .modifiers
                    .iter()
                    .any(|m| !allowed.contains(m))
            {
                return deny("CO", "4", Some("N823"));
            }
            if paid.already_paid(&claim.member_id, code, &line.procedure.modifiers, date) {
                return deny("OA", "18", Some("N111"));
            }
            price(
                payer,
                member,
                Money::from_decimal(line.charge),
                line.units,
                code,
                &mut met,
            )
        })
        .collect();
    ClaimDecision {
        lines,
        deductible: met.deductible - start.deductible,
        out_of_pocket: met.oop - start.oop,
    }
}

fn denied_line(
    charge: Money,
    group: &'static str,
    reason: &'static str,
    remark: Option<&'static str>,
) -> LineDecision {
    LineDecision {
        charge,
        allowed: Money::ZERO,
        paid: Money::ZERO,
        adjustments: vec![Adjust {
            group,
            reason,
            amount: charge,
        }],
        remarks: remark.into_iter().collect(),
        priced: false,
    }
}

fn denied_all(
    claim: &ReceivedClaim,
    group: &'static str,
    reason: &'static str,
    remark: Option<&'static str>,
) -> ClaimDecision {
    ClaimDecision {
        lines: claim
            .lines
            .iter()
            .map(|l| denied_line(Money::from_decimal(l.charge), group, reason, remark))
            .collect(),
        deductible: Money::ZERO,
        out_of_pocket: Money::ZERO,
    }
}

fn remaining(total: Money, met: Money) -> Money {
    if met >= total {
        Money::ZERO
    } else {
        total - met
    }
}

fn min(a: Money, b: Money) -> Money {
    if a < b { a } else { b }
}

/// Prices one covered line and moves `met` by the patient's share.
fn price(
    payer: &Payer,
    member: &Member,
    charge: Money,
    units: rust_decimal::Decimal,
    code: &str,
    met: &mut Met,
) -> LineDecision {
    let fee = payer.procedure(code);
    let listed = fee.map_or_else(
        || charge.mul_rate(payer.entry.unlisted_rate).round_cents(),
        |f| Money::from_decimal(f.allowed.as_decimal() * units).round_cents(),
    );
    let allowed = min(charge, listed);
    let tier = member.tier();
    let deductible_open = min(
        remaining(tier.deductible_individual, met.deductible),
        tier.deductible_family
            .map_or(Money::from_decimal(rust_decimal::Decimal::MAX), |f| {
                remaining(f, met.family_deductible)
            }),
    );
    let oop_open = min(
        remaining(tier.oop_max_individual, met.oop),
        tier.oop_max_family
            .map_or(Money::from_decimal(rust_decimal::Decimal::MAX), |f| {
                remaining(f, met.family_oop)
            }),
    );
    let copay = fee
        .and_then(|f| f.service_type.as_ref())
        .and_then(|st| tier.copays.get(st))
        .map(|c| min(*c, allowed));
    let (mut deductible, mut coinsurance, mut copay) = match copay {
        Some(c) => (Money::ZERO, Money::ZERO, c),
        None => {
            let d = min(deductible_open, allowed);
            let co = (allowed - d).mul_rate(tier.coinsurance).round_cents();
            (d, co, Money::ZERO)
        }
    };
    // The out-of-pocket maximum caps the patient's share: coinsurance gives way first.
    let mut over = deductible + coinsurance + copay - oop_open;
    for share in [&mut coinsurance, &mut copay, &mut deductible] {
        if over.is_positive() {
            let cut = min(over, *share);
            *share -= cut;
            over -= cut;
        }
    }
    met.deductible += deductible;
    met.family_deductible += deductible;
    let owed = deductible + coinsurance + copay;
    met.oop += owed;
    met.family_oop += owed;
    let mut adjustments = Vec::new();
    for (group, reason, amount) in [
        ("CO", "45", charge - allowed),
        ("PR", "1", deductible),
        ("PR", "2", coinsurance),
        ("PR", "3", copay),
    ] {
        if amount.is_positive() {
            adjustments.push(Adjust {
                group,
                reason,
                amount,
            });
        }
    }
    LineDecision {
        charge,
        allowed,
        paid: allowed - owed,
        adjustments,
        remarks: Vec::new(),
        priced: true,
    }
}

/// Interest on a late payment: `paid x rate x days late / 365`, rounded to cents.
pub fn interest(paid: Money, rate: Rate, days_late: i64) -> Money {
    if days_late <= 0 || !paid.is_positive() {
        return Money::ZERO;
    }
    let yearly = paid.mul_rate(rate).as_decimal();
    Money::from_decimal(
        yearly * rust_decimal::Decimal::from(days_late) / rust_decimal::Decimal::from(365),
    )
    .round_cents()
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use medbill_x12::model::DateRange;
    use medbill_x12::model::claim::Procedure;
    use medbill_x12::transactions::claim837::ClaimSet;
    use medbill_x12::write::samples;
    use rust_decimal::Decimal;

    use super::*;

    struct NothingPaid;
    impl PaidServices for NothingPaid {
        fn already_paid(&self, _: &str, _: &str, _: &[String], _: NaiveDate) -> bool {
            false
        }
    }

    fn money(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()
    }

    /// A claim of `member` at SIMPPO with one line per (code, units, charge).
    fn claim(member: &str, lines: &[(&str, u32, &str)]) -> ReceivedClaim {
        let mut set = samples::professional_set();
        let mut c = set.claims.remove(0);
        c.payer.id = "SIMPPO".into();
        c.subscriber.member_id = member.into();
        let template = c.lines[0].clone();
        c.lines = lines
            .iter()
            .map(|(code, units, charge)| {
                let mut l = template.clone();
                l.procedure = Procedure::hc(*code);
                l.units = Decimal::from(*units);
                l.charge = Decimal::from_str(charge).unwrap();
                l.service_date = DateRange::day(day());
                l
            })
            .collect();
        c.claim.total_charge = c.lines.iter().map(|l| l.charge).sum();
        set.claims = vec![c];
        ReceivedClaim::all_of(&ClaimSet::Professional(set)).remove(0)
    }

    fn decide(c: &ReceivedClaim) -> ClaimDecision {
        let catalog = Catalog::default_catalog().unwrap();
        adjudicate(&catalog, c, day(), &|m| catalog.met(m), &NothingPaid)
    }

    fn cas(l: &LineDecision) -> Vec<(&'static str, &'static str, Money)> {
        l.adjustments
            .iter()
            .map(|a| (a.group, a.reason, a.amount))
            .collect()
    }

    #[test]
    fn fee_schedule_then_deductible_then_coinsurance() {
        // SPX100000001: PPO-GOLD, deductible 1500 (250 met), 20%.
        let d = decide(&claim("SPX100000001", &[("99214", 10, "2000")]));
        let l = &d.lines[0];
        assert_eq!(l.allowed, money("1500"));
        assert_eq!(
            cas(l),
            vec![
                ("CO", "45", money("500")),
                ("PR", "1", money("1250")),
                ("PR", "2", money("50")),
            ]
        );
        assert_eq!(l.paid, money("200"));
        assert_eq!(
            (d.deductible, d.out_of_pocket),
            (money("1250"), money("1300"))
        );
        assert_eq!(d.status(), "1");
        assert_eq!(d.patient_responsibility(), money("1300"));
    }

    #[test]
    fn copay_replaces_deductible_for_its_service_type() {
        let d = decide(&claim("SPX100000001", &[("99213", 1, "130")]));
        assert_eq!(
            cas(&d.lines[0]),
            vec![("CO", "45", money("30")), ("PR", "3", money("25"))]
        );
        assert_eq!(d.lines[0].paid, money("75"));
        assert_eq!(d.deductible, Money::ZERO);
    }

    #[test]
    fn out_of_pocket_maximum_stops_the_patients_share() {
        // SPX100000002 has met the deductible and the out-of-pocket maximum.
        let d = decide(&claim("SPX100000002", &[("99214", 1, "150")]));
        assert!(cas(&d.lines[0]).is_empty());
        assert_eq!(d.paid(), money("150"));
        // SPX100000006 (HSA: OOP 7000, 4200 met, deductible met, 30%): 2800 left.
        let d = decide(&claim("SPX100000006", &[("99214", 100, "15000")]));
        assert_eq!(d.lines[0].allowed, money("15000"));
        assert_eq!(d.patient_responsibility(), money("2800"));
        assert_eq!(d.paid(), money("12200"));
    }

    #[test]
    fn later_lines_see_what_earlier_lines_met_and_unlisted_codes_use_the_rate() {
        // SPX100000005: HSA, deductible 3500, nothing met, 30%.
        let d = decide(&claim(
            "SPX100000005",
            &[
                ("99214", 20, "3000"),
                ("99214", 20, "3000"),
                ("36415", 1, "20"),
            ],
        ));
        assert_eq!(cas(&d.lines[0]), vec![("PR", "1", money("3000"))]);
        assert_eq!(
            cas(&d.lines[1]),
            vec![("PR", "1", money("500")), ("PR", "2", money("750"))]
        );
        assert_eq!(d.lines[1].paid, money("1750"));
        // Not in the fee schedule: 70% of 20.00 allowed, 30% of it owed.
        assert_eq!(d.lines[2].allowed, money("14"));
        assert_eq!(
            cas(&d.lines[2]),
            vec![("CO", "45", money("6")), ("PR", "2", money("4.2"))]
        );
        assert_eq!(d.deductible, money("3500"));
    }

    #[test]
    fn interest_is_per_day_late() {
        let rate = medbill_domain::Rate::parse("0.12").unwrap();
        assert_eq!(interest(money("200"), rate, 30), money("1.97"));
        assert_eq!(interest(money("200"), rate, 0), Money::ZERO);
        assert_eq!(interest(Money::ZERO, rate, 90), Money::ZERO);
    }
}
