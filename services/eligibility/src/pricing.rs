//! Patient cost estimates: allowed amounts from the tenant's fee schedule (or the charge),
//! then the patient's share line by line through `medbill_domain`'s estimator, with the
//! deductible and out-of-pocket room used up in request order.

use medbill_domain::{
    CopayRule, EstimateError, Money, PlanBenefits, Rate, ServiceToPrice,
    estimate_patient_responsibility,
};
use medbill_proto::common::v1 as common;
use medbill_proto::eligibility::v1 as pb;
use rust_decimal::Decimal;

/// One validated service to price.
#[derive(Debug, Clone, PartialEq)]
pub struct LineInput {
    /// Procedure (qualifier defaulted, code checked).
    pub procedure: common::Procedure,
    /// Service type code deciding copay or coinsurance ("30" when none was given).
    pub service_type: String,
    /// Units of service.
    pub units: Decimal,
    /// Billed charge for the line.
    pub charge: Money,
}

/// Where a line's allowed amount came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowedSource {
    /// The fee schedule had the procedure.
    FeeSchedule,
    /// The charge was used.
    Charge,
}

/// Returns the allowed amount of a line: the per-unit schedule amount times the units (rounded
/// to the cent), or the charge when the schedule has no entry.
pub fn allowed_amount(line: &LineInput, per_unit: Option<Money>) -> (Money, AllowedSource) {
    match per_unit {
        Some(rate) => (
            Money::from_decimal(rate.as_decimal() * line.units).round_cents(),
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
    /// A stored summary amount does not parse.
    #[error("the benefit summary's {field} {value:?} is not a usable amount")]
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

fn money(field: &'static str, value: &str) -> Result<Option<Money>, PricingError> {
    if value.is_empty() {
        return Ok(None);
    }
    Money::parse(value)
        .map(Some)
        .map_err(|_| PricingError::BadSummary {
            field,
            value: value.to_owned(),
        })
}

fn rate(field: &'static str, value: &str) -> Result<Option<Rate>, PricingError> {
    if value.is_empty() {
        return Ok(None);
    }
    Rate::parse(value)
        .map(Some)
        .map_err(|_| PricingError::BadSummary {
            field,
            value: value.to_owned(),
        })
}

impl PlanFigures {
    /// Reads the figures from a benefit summary.
    pub fn from_summary(s: &pb::BenefitSummary) -> Result<Self, PricingError> {
        let ded = s.individual_deductible.clone().unwrap_or_default();
        let oop = s.individual_out_of_pocket.clone().unwrap_or_default();
        Ok(Self {
            remaining_deductible: money("deductible remaining", &ded.remaining)?
                .unwrap_or(Money::ZERO),
            remaining_oop: money("out-of-pocket remaining", &oop.remaining)?,
            coinsurance: rate("coinsurance rate", &s.coinsurance_rate)?.unwrap_or(Rate::ZERO),
        })
    }
}

/// The priced lines and what is left of the plan figures after them.
#[derive(Debug, Clone, PartialEq)]
pub struct Priced {
    /// One per input line.
    pub lines: Vec<pb::CostEstimateLine>,
    /// Deductible left after all lines.
    pub remaining_deductible: Money,
    /// Out-of-pocket room left after all lines.
    pub remaining_oop: Option<Money>,
}

fn text(m: Money) -> String {
    m.round_cents().to_string()
}

fn source_proto(s: AllowedSource) -> i32 {
    match s {
        AllowedSource::FeeSchedule => pb::AllowedAmountSource::FeeSchedule as i32,
        AllowedSource::Charge => pb::AllowedAmountSource::Charge as i32,
    }
}

fn line_proto(
    number: usize,
    line: &LineInput,
    allowed: Money,
    source: AllowedSource,
    breakdown: pb::ResponsibilityBreakdown,
) -> pb::CostEstimateLine {
    pb::CostEstimateLine {
        line_number: u32::try_from(number).unwrap_or(u32::MAX),
        procedure: Some(line.procedure.clone()),
        service_type_code: line.service_type.clone(),
        units: line.units.normalize().to_string(),
        charge: text(line.charge),
        allowed_amount: text(allowed),
        allowed_amount_source: source_proto(source),
        breakdown: Some(breakdown),
    }
}

/// Prices insured lines under `summary`; `allowed` gives each line's allowed amount.
///
/// Each line is priced with the estimator on the figures left by the lines before it: a
/// service type with its own copay takes that copay, one with its own coinsurance rate takes
/// that rate, and a service type the payer reports as not covered is the patient's in full
/// (outside the deductible and the out-of-pocket maximum).
pub fn price_insured(
    summary: &pb::BenefitSummary,
    lines: &[(LineInput, Money, AllowedSource)],
) -> Result<Priced, PricingError> {
    let figures = PlanFigures::from_summary(summary)?;
    let mut remaining_deductible = figures.remaining_deductible;
    let mut remaining_oop = figures.remaining_oop;
    let mut out = Vec::with_capacity(lines.len());
    for (index, (line, allowed, source)) in lines.iter().enumerate() {
        let st = summary
            .service_types
            .iter()
            .find(|t| t.service_type_code == line.service_type);
        let covered = st.is_none_or(|t| t.covered);
        let breakdown = if covered {
            let copay = match st.map(|t| money("copay", &t.copay)).transpose()?.flatten() {
                Some(p) => CopayRule::Amount(p),
                None => CopayRule::None,
            };
            let coinsurance = st
                .map(|t| rate("service coinsurance rate", &t.coinsurance_rate))
                .transpose()?
                .flatten()
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
            let l = estimate
                .lines
                .first()
                .cloned()
                .ok_or(PricingError::Estimate(EstimateError::MissingCopay {
                    line: index + 1,
                }))?;
            pb::ResponsibilityBreakdown {
                deductible: text(l.deductible),
                coinsurance: text(l.coinsurance),
                copay: text(l.copay),
                out_of_pocket_cap_reduction: text(l.capped_by_oop),
                patient_responsibility: text(l.patient),
                plan_pays: text(l.plan_pays),
            }
        } else {
            pb::ResponsibilityBreakdown {
                deductible: text(Money::ZERO),
                coinsurance: text(*allowed),
                copay: text(Money::ZERO),
                out_of_pocket_cap_reduction: text(Money::ZERO),
                patient_responsibility: text(*allowed),
                plan_pays: text(Money::ZERO),
            }
        };
        out.push(line_proto(index + 1, line, *allowed, *source, breakdown));
    }
    Ok(Priced {
        lines: out,
        remaining_deductible,
        remaining_oop,
    })
}

/// Prices self-pay lines: the patient owes the allowed amount (self-pay rate or charge).
pub fn price_self_pay(lines: &[(LineInput, Money, AllowedSource)]) -> Vec<pb::CostEstimateLine> {
    lines
        .iter()
        .enumerate()
        .map(|(index, (line, allowed, source))| {
            line_proto(
                index + 1,
                line,
                *allowed,
                *source,
                pb::ResponsibilityBreakdown {
                    deductible: text(Money::ZERO),
                    coinsurance: text(Money::ZERO),
                    copay: text(Money::ZERO),
                    out_of_pocket_cap_reduction: text(Money::ZERO),
                    patient_responsibility: text(*allowed),
                    plan_pays: text(Money::ZERO),
                },
            )
        })
        .collect()
}

/// Sums the line breakdowns.
pub fn total(lines: &[pb::CostEstimateLine]) -> pb::ResponsibilityBreakdown {
    let mut sums = [Money::ZERO; 6];
    for line in lines {
        let b = line.breakdown.clone().unwrap_or_default();
        let parts = [
            &b.deductible,
            &b.coinsurance,
            &b.copay,
            &b.out_of_pocket_cap_reduction,
            &b.patient_responsibility,
            &b.plan_pays,
        ];
        for (sum, part) in sums.iter_mut().zip(parts) {
            *sum += Money::parse(part).unwrap_or(Money::ZERO);
        }
    }
    let [deductible, coinsurance, copay, cap, patient, plan] = sums;
    pb::ResponsibilityBreakdown {
        deductible: text(deductible),
        coinsurance: text(coinsurance),
        copay: text(copay),
        out_of_pocket_cap_reduction: text(cap),
        patient_responsibility: text(patient),
        plan_pays: text(plan),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap_or(Money::ZERO)
    }

    fn line(code: &str, st: &str, charge: &str) -> LineInput {
        LineInput {
            procedure: common::Procedure {
                qualifier: "HC".into(),
                code: code.into(),
                ..Default::default()
            },
            service_type: st.into(),
            units: Decimal::ONE,
            charge: m(charge),
        }
    }

    fn summary() -> pb::BenefitSummary {
        pb::BenefitSummary {
            individual_deductible: Some(pb::Accumulator {
                total: "1500.00".into(),
                remaining: "100.00".into(),
                met: "1400.00".into(),
            }),
            individual_out_of_pocket: Some(pb::Accumulator {
                total: "5000.00".into(),
                remaining: "150.00".into(),
                met: String::new(),
            }),
            coinsurance_rate: "0.2".into(),
            service_types: vec![pb::ServiceTypeBenefit {
                service_type_code: "98".into(),
                covered: true,
                copay: "25.00".into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn lines_use_up_deductible_and_out_of_pocket_in_order() {
        let office = line("99213", "98", "150.00");
        let lab = line("80053", "30", "400.00");
        let priced = price_insured(
            &summary(),
            &[
                (office.clone(), m("92.00"), AllowedSource::FeeSchedule),
                (lab.clone(), m("400.00"), AllowedSource::Charge),
            ],
        )
        .expect("priced");
        let b0 = priced.lines[0].breakdown.clone().unwrap_or_default();
        assert_eq!(b0.copay, "25.00");
        assert_eq!(b0.patient_responsibility, "25.00");
        assert_eq!(b0.plan_pays, "67.00");
        // Lab: deductible 100, coinsurance 20% of 300 = 60 -> 160, capped at 150-25 = 125.
        let b1 = priced.lines[1].breakdown.clone().unwrap_or_default();
        assert_eq!(b1.deductible, "100.00");
        assert_eq!(b1.coinsurance, "25.00");
        assert_eq!(b1.out_of_pocket_cap_reduction, "35.00");
        assert_eq!(b1.patient_responsibility, "125.00");
        assert_eq!(priced.remaining_deductible, Money::ZERO);
        assert_eq!(priced.remaining_oop, Some(Money::ZERO));
        let t = total(&priced.lines);
        assert_eq!(t.patient_responsibility, "150.00");
        assert_eq!(t.plan_pays, "342.00");
    }

    #[test]
    fn schedule_amounts_are_per_unit() {
        let mut l = line("97110", "30", "300.00");
        l.units = Decimal::new(3, 0);
        assert_eq!(
            allowed_amount(&l, Some(m("33.33"))),
            (m("99.99"), AllowedSource::FeeSchedule)
        );
        assert_eq!(
            allowed_amount(&l, None),
            (m("300.00"), AllowedSource::Charge)
        );
    }
}
