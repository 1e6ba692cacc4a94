//! Patient cost estimates: allowed amounts from the tenant's fee schedule (or the charge),
//! then the patient's share line by line through `medbill_domain`'s estimator, with the
//! deductible and out-of-pocket room used up in request order.
//!
//! Every line's [`Breakdown`] adds up: `deductible + coinsurance + copay -
//! out_of_pocket_cap_reduction == patient_responsibility` and `patient_responsibility +
//! plan_pays == allowed`, so the estimate's total (the field-by-field sum) adds up too.

use medbill_domain::estimate::ServiceUnits;
use medbill_domain::{
    CopayRule, Decimal, EstimateError, LineEstimate, Money, PlanBenefits, Rate, ServiceToPrice,
    estimate_patient_responsibility,
};

use crate::model::{AllowedSource, BenefitSummary, Breakdown, EstimateLine, Procedure};

/// One validated service to price.
#[derive(Debug, Clone, PartialEq)]
pub struct LineInput {
    /// Procedure (qualifier defaulted, code checked).
    pub procedure: Procedure,
    /// Service type code deciding copay or coinsurance ("30" when none was given).
    pub service_type: String,
    /// Units of service.
    pub units: ServiceUnits,
    /// Billed charge for the line.
    pub charge: Money,
}

/// Returns the allowed amount of a line: the per-unit schedule amount times the units (rounded
/// to the cent), or the charge when the schedule has no entry.
pub fn allowed_amount(line: &LineInput, per_unit: Option<Money>) -> (Money, AllowedSource) {
    match per_unit {
        Some(rate) => (
            Money::from_decimal(rate.as_decimal() * line.units.as_decimal()).round_cents(),
            AllowedSource::FeeSchedule,
        ),
        None => (line.charge, AllowedSource::Charge),
    }
}

/// The plan figures an estimate starts from, read off a benefit summary.
#[derive(Debug, Clone, PartialEq)]
pub struct PlanFigures {
    /// Remaining individual deductible (zero when the payer did not say).
    pub remaining_deductible: Money,
    /// Remaining individual out-of-pocket room (`None` when the payer did not say).
    pub remaining_oop: Option<Money>,
    /// Plan-level coinsurance (zero when the payer did not say).
    pub coinsurance: Rate,
}

/// Why a summary cannot be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// A summary figure is not usable for pricing (a rate above 1, an amount below zero).
    #[error("the benefit summary's {field} {value} is not usable")]
    BadSummary {
        /// Which figure.
        field: &'static str,
        /// The value.
        value: String,
    },
    /// The estimator refused the input.
    #[error(transparent)]
    Estimate(#[from] EstimateError),
}

fn rate(field: &'static str, value: Option<Decimal>) -> Result<Option<Rate>, PricingError> {
    value
        .map(|v| {
            Rate::new(v).map_err(|_| PricingError::BadSummary {
                field,
                value: v.to_string(),
            })
        })
        .transpose()
}

impl PlanFigures {
    /// Reads the figures from a benefit summary.
    pub fn from_summary(s: &BenefitSummary) -> Result<Self, PricingError> {
        let remaining =
            |a: &Option<crate::model::Accumulator>| a.as_ref().and_then(|a| a.remaining);
        Ok(Self {
            remaining_deductible: remaining(&s.individual_deductible).unwrap_or(Money::ZERO),
            remaining_oop: remaining(&s.individual_out_of_pocket),
            coinsurance: rate("coinsurance rate", s.coinsurance_rate)?.unwrap_or(Rate::ZERO),
        })
    }
}

/// The priced lines and what is left of the plan figures after them.
#[derive(Debug, Clone, PartialEq)]
pub struct Priced {
    /// One per input line.
    pub lines: Vec<EstimateLine>,
    /// Deductible left after all lines.
    pub remaining_deductible: Money,
    /// Out-of-pocket room left after all lines.
    pub remaining_oop: Option<Money>,
}

fn line(
    number: usize,
    input: &LineInput,
    allowed: Money,
    source: AllowedSource,
    breakdown: Breakdown,
) -> EstimateLine {
    EstimateLine {
        line_number: u32::try_from(number).unwrap_or(u32::MAX),
        procedure: input.procedure.clone(),
        service_type_code: input.service_type.clone(),
        units: input.units.as_decimal(),
        charge: input.charge,
        allowed_amount: allowed,
        allowed_amount_source: source,
        breakdown,
    }
}

/// Returns the breakdown of an estimator line: its parts before the cap, the cap and the shares.
fn breakdown(l: &LineEstimate) -> Breakdown {
    Breakdown {
        deductible: l.deductible,
        coinsurance: l.coinsurance,
        copay: l.copay,
        out_of_pocket_cap_reduction: l.capped_by_oop,
        patient_responsibility: l.patient,
        plan_pays: l.plan_pays,
    }
}

/// Returns the breakdown of an amount the patient owes in full (self-pay, a service the plan
/// does not cover): all of it is the patient's share of the allowed amount, shown as
/// coinsurance so the parts add up.
fn patient_owes_all(allowed: Money) -> Breakdown {
    Breakdown {
        coinsurance: allowed,
        patient_responsibility: allowed,
        ..Breakdown::default()
    }
}

/// Prices insured lines under `summary`; `allowed` gives each line's allowed amount.
///
/// Each line is priced with the estimator on the figures left by the lines before it: a
/// service type with its own copay takes that copay, one with its own coinsurance rate takes
/// that rate, and a service type the payer reports as not covered is the patient's in full
/// (outside the deductible and the out-of-pocket maximum).
pub fn price_insured(
    summary: &BenefitSummary,
    lines: &[(LineInput, Money, AllowedSource)],
) -> Result<Priced, PricingError> {
    let figures = PlanFigures::from_summary(summary)?;
    let mut remaining_deductible = figures.remaining_deductible;
    let mut remaining_oop = figures.remaining_oop;
    let mut out = Vec::with_capacity(lines.len());
    for (index, (input, allowed, source)) in lines.iter().enumerate() {
        let st = summary
            .service_types
            .iter()
            .find(|t| t.service_type_code == input.service_type);
        let covered = st.is_none_or(|t| t.covered);
        let parts = if covered {
            let copay = match st.and_then(|t| t.copay) {
                Some(p) => CopayRule::Amount(p),
                None => CopayRule::None,
            };
            let coinsurance = rate(
                "service coinsurance rate",
                st.and_then(|t| t.coinsurance_rate),
            )?
            .unwrap_or(figures.coinsurance);
            let estimate = estimate_patient_responsibility(
                &PlanBenefits {
                    remaining_deductible,
                    coinsurance,
                    copay: None,
                    remaining_oop,
                },
                &[ServiceToPrice {
                    allowed: *allowed,
                    copay,
                }],
            )?;
            remaining_deductible = estimate.remaining_deductible;
            remaining_oop = estimate.remaining_oop;
            let priced = estimate.lines.first().ok_or(PricingError::Estimate(
                EstimateError::MissingCopay { line: index + 1 },
            ))?;
            breakdown(priced)
        } else {
            patient_owes_all(*allowed)
        };
        out.push(line(index + 1, input, *allowed, *source, parts));
    }
    Ok(Priced {
        lines: out,
        remaining_deductible,
        remaining_oop,
    })
}

/// Prices self-pay lines: the patient owes the allowed amount (self-pay rate or charge).
pub fn price_self_pay(lines: &[(LineInput, Money, AllowedSource)]) -> Vec<EstimateLine> {
    lines
        .iter()
        .enumerate()
        .map(|(index, (input, allowed, source))| {
            line(
                index + 1,
                input,
                *allowed,
                *source,
                patient_owes_all(*allowed),
            )
        })
        .collect()
}

/// Sums the line breakdowns into the estimate's total.
pub fn total(lines: &[EstimateLine]) -> Breakdown {
    Breakdown::sum(lines.iter().map(|l| &l.breakdown))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Accumulator, ServiceTypeBenefit};
    use proptest::prelude::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap_or(Money::ZERO)
    }

    fn line_input(code: &str, st: &str, charge: &str) -> LineInput {
        LineInput {
            procedure: Procedure {
                qualifier: "HC".into(),
                code: code.into(),
                modifiers: Vec::new(),
            },
            service_type: st.into(),
            units: ServiceUnits::ONE,
            charge: m(charge),
        }
    }

    fn summary(remaining_deductible: &str, remaining_oop: Option<&str>) -> BenefitSummary {
        BenefitSummary {
            individual_deductible: Some(Accumulator {
                total: Some(m("1500.00")),
                remaining: Some(m(remaining_deductible)),
            }),
            individual_out_of_pocket: Some(Accumulator {
                total: Some(m("5000.00")),
                remaining: remaining_oop.map(m),
            }),
            coinsurance_rate: Some(Decimal::new(2, 1)),
            service_types: vec![
                ServiceTypeBenefit {
                    service_type_code: "98".into(),
                    description: String::new(),
                    covered: true,
                    copay: Some(m("25.00")),
                    coinsurance_rate: None,
                    authorization_required: false,
                },
                ServiceTypeBenefit {
                    service_type_code: "88".into(),
                    description: String::new(),
                    covered: false,
                    copay: None,
                    coinsurance_rate: None,
                    authorization_required: false,
                },
            ],
            ..BenefitSummary::unknown()
        }
    }

    /// Checks both sums a breakdown promises.
    fn assert_adds_up(b: &Breakdown, allowed: Money) {
        assert_eq!(
            b.deductible + b.coinsurance + b.copay - b.out_of_pocket_cap_reduction,
            b.patient_responsibility,
            "{b:?}"
        );
        assert_eq!(b.patient_responsibility + b.plan_pays, allowed, "{b:?}");
    }

    #[test]
    fn lines_use_up_deductible_and_out_of_pocket_in_order() {
        let office = line_input("99213", "98", "150.00");
        let lab = line_input("80053", "30", "400.00");
        let priced = price_insured(
            &summary("100.00", Some("150.00")),
            &[
                (office, m("92.00"), AllowedSource::FeeSchedule),
                (lab, m("400.00"), AllowedSource::Charge),
            ],
        )
        .expect("priced");
        let b0 = priced.lines[0].breakdown;
        assert_eq!(b0.copay, m("25.00"));
        assert_eq!(b0.patient_responsibility, m("25.00"));
        assert_eq!(b0.plan_pays, m("67.00"));
        // Lab: deductible 100, coinsurance 20% of 300 = 60 -> 160, capped at 150-25 = 125.
        let b1 = priced.lines[1].breakdown;
        assert_eq!(b1.deductible, m("100.00"));
        assert_eq!(b1.coinsurance, m("60.00"));
        assert_eq!(b1.out_of_pocket_cap_reduction, m("35.00"));
        assert_eq!(b1.patient_responsibility, m("125.00"));
        assert_adds_up(&b1, m("400.00"));
        assert_eq!(priced.remaining_deductible, Money::ZERO);
        assert_eq!(priced.remaining_oop, Some(Money::ZERO));
        let t = total(&priced.lines);
        assert_eq!(t.patient_responsibility, m("150.00"));
        assert_eq!(t.plan_pays, m("342.00"));
        assert_adds_up(&t, m("492.00"));
    }

    #[test]
    fn a_large_charge_capped_by_the_out_of_pocket_maximum_adds_up() {
        // The reported case: 100000.00 with 1250.00 deductible and 4600.00 of room left used to
        // come back as 1250 + 3350 - 16400 = 4600.
        let priced = price_insured(
            &summary("1250.00", Some("4600.00")),
            &[(
                line_input("27447", "30", "100000.00"),
                m("100000.00"),
                AllowedSource::Charge,
            )],
        )
        .expect("priced");
        let b = priced.lines[0].breakdown;
        assert_eq!(
            (
                b.deductible,
                b.coinsurance,
                b.out_of_pocket_cap_reduction,
                b.patient_responsibility
            ),
            (m("1250.00"), m("19750.00"), m("16400.00"), m("4600.00"))
        );
        assert_adds_up(&b, m("100000.00"));
    }

    #[test]
    fn self_pay_and_uncovered_lines_add_up() {
        let lines = [(
            line_input("99213", "30", "150.00"),
            m("75.00"),
            AllowedSource::FeeSchedule,
        )];
        let b = price_self_pay(&lines)[0].breakdown;
        assert_eq!(b.patient_responsibility, m("75.00"));
        assert_eq!(b.plan_pays, Money::ZERO);
        assert_adds_up(&b, m("75.00"));
        let uncovered = price_insured(
            &summary("0.00", None),
            &[(
                line_input("J3420", "88", "40.00"),
                m("40.00"),
                AllowedSource::Charge,
            )],
        )
        .expect("priced");
        assert_adds_up(&uncovered.lines[0].breakdown, m("40.00"));
    }

    #[test]
    fn schedule_amounts_are_per_unit() {
        let mut l = line_input("97110", "30", "300.00");
        l.units = ServiceUnits::parse("3").expect("units");
        assert_eq!(
            allowed_amount(&l, Some(m("33.33"))),
            (m("99.99"), AllowedSource::FeeSchedule)
        );
        assert_eq!(
            allowed_amount(&l, None),
            (m("300.00"), AllowedSource::Charge)
        );
    }

    fn cents(max: i64) -> impl Strategy<Value = Money> {
        (0..=max).prop_map(Money::from_minor_units)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn every_breakdown_and_the_total_add_up(
            deductible in cents(1_000_000),
            oop in proptest::option::of(cents(2_000_000)),
            coinsurance in 0i64..=100,
            lines in proptest::collection::vec((cents(20_000_000), 0usize..3, any::<bool>()), 1..10),
            self_pay in any::<bool>(),
        ) {
            let mut s = summary("0", None);
            if let Some(d) = s.individual_deductible.as_mut() {
                d.remaining = Some(deductible);
            }
            if let Some(o) = s.individual_out_of_pocket.as_mut() {
                o.remaining = oop;
            }
            s.coinsurance_rate = Some(Decimal::new(coinsurance, 2));
            let inputs: Vec<_> = lines
                .iter()
                .map(|(allowed, st, schedule)| {
                    let source = if *schedule { AllowedSource::FeeSchedule } else { AllowedSource::Charge };
                    (line_input("99213", ["30", "98", "88"][*st], "1.00"), *allowed, source)
                })
                .collect();
            let priced = if self_pay {
                price_self_pay(&inputs)
            } else {
                match price_insured(&s, &inputs) {
                    Ok(p) => p.lines,
                    Err(e) => return Err(TestCaseError::fail(format!("refused: {e}"))),
                }
            };
            prop_assert_eq!(priced.len(), inputs.len());
            for (l, (_, allowed, _)) in priced.iter().zip(&inputs) {
                let b = l.breakdown;
                prop_assert_eq!(b.deductible + b.coinsurance + b.copay - b.out_of_pocket_cap_reduction, b.patient_responsibility, "{:?}", b);
                prop_assert_eq!(b.patient_responsibility + b.plan_pays, *allowed, "{:?}", b);
                prop_assert!(!b.out_of_pocket_cap_reduction.is_negative(), "{:?}", b);
            }
            let t = total(&priced);
            let allowed: Money = inputs.iter().map(|(_, a, _)| *a).sum();
            prop_assert_eq!(t.deductible + t.coinsurance + t.copay - t.out_of_pocket_cap_reduction, t.patient_responsibility);
            prop_assert_eq!(t.patient_responsibility + t.plan_pays, allowed);
        }
    }
}
