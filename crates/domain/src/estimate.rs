//! Patient-responsibility estimate: what a patient will owe for services priced in order under a
//! plan's remaining deductible, coinsurance, copay and out-of-pocket room (DOMAIN.md).

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::{Money, Rate};

/// The plan's benefits as they stand before the first service is priced (usually from a 271).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanBenefits {
    /// Deductible still to be met (D).
    pub remaining_deductible: Money,
    /// Patient's coinsurance share after the deductible (c), e.g. 0.2.
    pub coinsurance: Rate,
    /// Copay per service for services that take a copay (P); `None` when the plan has none.
    pub copay: Option<Money>,
    /// Out-of-pocket room left before the plan pays everything (M); `None` when no maximum is known,
    /// in which case nothing is capped.
    pub remaining_oop: Option<Money>,
}

/// How a service's patient share is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "amount")]
pub enum CopayRule {
    /// No copay: deductible first, then coinsurance.
    None,
    /// The plan's copay ([`PlanBenefits::copay`]) applies.
    Plan,
    /// A copay specific to this service type applies (e.g. a 271 gives UC urgent care its own copay).
    Amount(Money),
}

/// One service to price, in the order the services are priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceToPrice {
    /// The payer's allowed amount for the service (A).
    pub allowed: Money,
    /// Whether a copay applies instead of deductible and coinsurance.
    pub copay: CopayRule,
}

/// The estimate for one service.
///
/// The parts are the patient's share as the plan's rules give it, before the out-of-pocket
/// maximum; `capped_by_oop` is what the maximum takes off. So
/// `deductible + coinsurance + copay - capped_by_oop == patient` and
/// `patient + plan_pays == allowed` always hold (the breakdown of the wire estimate).
/// The remaining deductible goes down by the deductible part the patient still owes after the
/// cap (`deductible.min(patient)`): an amount the cap removed is paid by the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineEstimate {
    /// The allowed amount priced.
    pub allowed: Money,
    /// Amount applied to the remaining deductible, before the cap.
    pub deductible: Money,
    /// Coinsurance on the allowed amount above the deductible, before the cap.
    pub coinsurance: Money,
    /// Copay, before the cap.
    pub copay: Money,
    /// Amount the out-of-pocket maximum removed from the parts above (zero or positive).
    pub capped_by_oop: Money,
    /// What the patient owes for this service.
    pub patient: Money,
    /// What the plan pays for this service.
    pub plan_pays: Money,
    /// Deductible still to be met after this service.
    pub remaining_deductible: Money,
    /// Out-of-pocket room left after this service (`None` when no maximum is known).
    pub remaining_oop: Option<Money>,
}

/// The estimate for a list of services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Estimate {
    /// One line per service, in input order.
    pub lines: Vec<LineEstimate>,
    /// Sum of the patient amounts.
    pub total_patient: Money,
    /// Sum of what the plan pays.
    pub total_plan_pays: Money,
    /// Deductible still to be met after all services.
    pub remaining_deductible: Money,
    /// Out-of-pocket room left after all services.
    pub remaining_oop: Option<Money>,
}

/// Explains why an estimate cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EstimateError {
    /// An amount is below zero.
    #[error("{field} is {value}; it must not be negative")]
    Negative {
        /// Which input (e.g. "service 2 allowed amount").
        field: String,
        /// The value given.
        value: Money,
    },
    /// An amount has a fraction of a cent.
    #[error("{field} is {value}; it must be a whole number of cents")]
    FractionalCents {
        /// Which input.
        field: String,
        /// The value given.
        value: Money,
    },
    /// A service asks for the plan copay, but the plan has none.
    #[error("service {line} takes the plan copay, but no copay amount was given")]
    MissingCopay {
        /// 1-based position of the service.
        line: usize,
    },
}

fn check(field: impl Fn() -> String, value: Money) -> Result<Money, EstimateError> {
    if value.is_negative() {
        return Err(EstimateError::Negative {
            field: field(),
            value,
        });
    }
    if !value.is_whole_cents() {
        return Err(EstimateError::FractionalCents {
            field: field(),
            value,
        });
    }
    Ok(value)
}

/// Prices services in order and returns what the patient and the plan pay for each.
///
/// For each service with allowed amount A:
/// - copay services: patient = min(P, A), and the deductible is untouched;
/// - otherwise: d = min(A, D); patient = d + c * (A - d);
/// - then patient = min(patient, M); D goes down by the deductible part the patient still owes
///   and M by the patient amount before the next service is priced.
///
/// The patient amount is rounded to the cent (half away from zero) once, at the end of each
/// line. All inputs must be non-negative whole cents.
pub fn estimate_patient_responsibility(
    benefits: &PlanBenefits,
    services: &[ServiceToPrice],
) -> Result<Estimate, EstimateError> {
    let mut remaining_deductible = check(
        || "remaining deductible".to_owned(),
        benefits.remaining_deductible,
    )?;
    let plan_copay = benefits
        .copay
        .map(|p| check(|| "copay".to_owned(), p))
        .transpose()?;
    let mut remaining_oop = benefits
        .remaining_oop
        .map(|m| check(|| "remaining out-of-pocket".to_owned(), m))
        .transpose()?;
    let coinsurance = benefits.coinsurance;

    let mut lines = Vec::with_capacity(services.len());
    for (index, service) in services.iter().enumerate() {
        let line = index + 1;
        let allowed = check(|| format!("service {line} allowed amount"), service.allowed)?;
        let copay_amount = match service.copay {
            CopayRule::None => None,
            CopayRule::Plan => Some(plan_copay.ok_or(EstimateError::MissingCopay { line })?),
            CopayRule::Amount(p) => Some(check(|| format!("service {line} copay"), p)?),
        };

        // Share before the out-of-pocket cap; `deductible_applied` is exact cents because A
        // and D are, so rounding the sum only rounds the coinsurance product.
        let (before_cap, deductible_applied) = match copay_amount {
            Some(p) => (p.min(allowed), Money::ZERO),
            None => {
                let d = allowed.min(remaining_deductible);
                let share = d + (allowed - d).mul_rate(coinsurance);
                (share.round_cents(), d)
            }
        };
        // Rounding is monotone and M is whole cents, so capping after rounding equals
        // rounding after capping.
        let patient = match remaining_oop {
            Some(m) => before_cap.min(m),
            None => before_cap,
        };
        let capped_by_oop = before_cap - patient;
        let (deductible, coinsurance_part, copay) = match copay_amount {
            Some(_) => (Money::ZERO, Money::ZERO, before_cap),
            None => (
                deductible_applied,
                before_cap - deductible_applied,
                Money::ZERO,
            ),
        };

        remaining_deductible -= deductible_applied.min(patient);
        remaining_oop = remaining_oop.map(|m| m - patient);
        lines.push(LineEstimate {
            allowed,
            deductible,
            coinsurance: coinsurance_part,
            copay,
            capped_by_oop,
            patient,
            plan_pays: allowed - patient,
            remaining_deductible,
            remaining_oop,
        });
    }

    Ok(Estimate {
        total_patient: lines.iter().map(|l| l.patient).sum(),
        total_plan_pays: lines.iter().map(|l| l.plan_pays).sum(),
        lines,
        remaining_deductible,
        remaining_oop,
    })
}

/// Units of service of a line (837P SV104, 837I SV205, an estimate's input): a plain decimal
/// greater than zero, at most [`ServiceUnits::MAX_LEN`] characters with at most
/// [`ServiceUnits::MAX_DECIMAL_PLACES`] decimal places (the 837's R element with room to spare).
/// Claims and estimates read units with this one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceUnits(Decimal);

/// Explains why text is not [`ServiceUnits`]; the text itself is not repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UnitsError {
    /// Not digits with at most one decimal point, too long, or too many decimal places.
    #[error(
        "must be a plain decimal such as \"1\" or \"2.5\": digits and one optional point, at most 12 characters and 3 decimal places"
    )]
    Syntax,
    /// Zero.
    #[error("must be greater than zero")]
    NotPositive,
}

impl ServiceUnits {
    /// Longest accepted text, in characters.
    pub const MAX_LEN: usize = 12;
    /// Most decimal places accepted.
    pub const MAX_DECIMAL_PLACES: usize = 3;
    /// One unit, what an absent units field means.
    pub const ONE: ServiceUnits = ServiceUnits(Decimal::ONE);

    /// Parses units such as `"1"`, `"2.5"` or `".25"` exactly.
    pub fn parse(s: &str) -> Result<ServiceUnits, UnitsError> {
        let bytes = s.as_bytes();
        let points = bytes.iter().filter(|&&b| b == b'.').count();
        let plain = !bytes.is_empty()
            && bytes.len() <= Self::MAX_LEN
            && bytes.iter().all(|b| b.is_ascii_digit() || *b == b'.')
            && points <= 1
            && bytes.iter().any(u8::is_ascii_digit)
            && s.split('.')
                .nth(1)
                .is_none_or(|frac| frac.len() <= Self::MAX_DECIMAL_PLACES);
        if !plain {
            return Err(UnitsError::Syntax);
        }
        let text = s.strip_suffix('.').unwrap_or(s);
        let value = Decimal::from_str_exact(text).map_err(|_| UnitsError::Syntax)?;
        if value.is_zero() {
            return Err(UnitsError::NotPositive);
        }
        Ok(ServiceUnits(value))
    }

    /// Returns the exact value.
    pub const fn as_decimal(&self) -> Decimal {
        self.0
    }
}

impl fmt::Display for ServiceUnits {
    /// Prints the value without trailing zeros (`2.5`, `3`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.normalize())
    }
}

/// A place of service code (837P CLM05-1 and SV105, CMS list): two digits, e.g. `11` office.
/// Claims and estimates read it with this one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlaceOfService([u8; 2]);

/// Reports text that is not a two-digit place of service code; the text is not repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("must be a two-digit place of service code such as \"11\"")]
pub struct PlaceOfServiceError;

impl PlaceOfService {
    /// Parses a two-digit code.
    pub fn parse(s: &str) -> Result<PlaceOfService, PlaceOfServiceError> {
        match s.as_bytes() {
            [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => Ok(PlaceOfService([*a, *b])),
            _ => Err(PlaceOfServiceError),
        }
    }

    /// Returns the code.
    pub fn as_str(&self) -> &str {
        // Two ASCII digits are always UTF-8.
        std::str::from_utf8(&self.0).unwrap_or("00")
    }
}

impl fmt::Display for PlaceOfService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn r(s: &str) -> Rate {
        Rate::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    fn plan(d: &str, c: &str, p: Option<&str>, oop: Option<&str>) -> PlanBenefits {
        PlanBenefits {
            remaining_deductible: m(d),
            coinsurance: r(c),
            copay: p.map(m),
            remaining_oop: oop.map(m),
        }
    }

    fn svc(allowed: &str) -> ServiceToPrice {
        ServiceToPrice {
            allowed: m(allowed),
            copay: CopayRule::None,
        }
    }

    fn copay_svc(allowed: &str) -> ServiceToPrice {
        ServiceToPrice {
            allowed: m(allowed),
            copay: CopayRule::Plan,
        }
    }

    fn run(p: &PlanBenefits, services: &[ServiceToPrice]) -> Estimate {
        estimate_patient_responsibility(p, services).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Checks one line: (deductible, coinsurance, copay, capped, patient, plan, D after, M after).
    #[allow(clippy::too_many_arguments)]
    fn assert_line(
        l: &LineEstimate,
        deductible: &str,
        coinsurance: &str,
        copay: &str,
        capped: &str,
        patient: &str,
        plan_pays: &str,
        d_after: &str,
        m_after: Option<&str>,
    ) {
        assert_eq!(l.deductible, m(deductible), "deductible in {l:?}");
        assert_eq!(l.coinsurance, m(coinsurance), "coinsurance in {l:?}");
        assert_eq!(l.copay, m(copay), "copay in {l:?}");
        assert_eq!(l.capped_by_oop, m(capped), "capped in {l:?}");
        assert_eq!(l.patient, m(patient), "patient in {l:?}");
        assert_eq!(l.plan_pays, m(plan_pays), "plan in {l:?}");
        assert_eq!(l.remaining_deductible, m(d_after), "D after in {l:?}");
        assert_eq!(l.remaining_oop, m_after.map(m), "M after in {l:?}");
        assert_eq!(
            l.deductible + l.coinsurance + l.copay - l.capped_by_oop,
            l.patient
        );
        assert_eq!(l.patient + l.plan_pays, l.allowed);
    }

    #[test]
    fn copay_only() {
        let p = plan("500", ".2", Some("25"), Some("3000"));
        let e = run(&p, &[copay_svc("150"), copay_svc("20")]);
        assert_line(
            &e.lines[0],
            "0",
            "0",
            "25",
            "0",
            "25",
            "125",
            "500",
            Some("2975"),
        );
        // the copay never exceeds the allowed amount
        assert_line(
            &e.lines[1],
            "0",
            "0",
            "20",
            "0",
            "20",
            "0",
            "500",
            Some("2955"),
        );
        assert_eq!(e.total_patient, m("45"));
    }

    #[test]
    fn service_specific_copay() {
        let p = plan("500", ".2", None, Some("3000"));
        let s = ServiceToPrice {
            allowed: m("180"),
            copay: CopayRule::Amount(m("75")),
        };
        let e = run(&p, &[s]);
        assert_line(
            &e.lines[0],
            "0",
            "0",
            "75",
            "0",
            "75",
            "105",
            "500",
            Some("2925"),
        );
    }

    #[test]
    fn deductible_only() {
        let p = plan("1000", ".2", None, Some("5000"));
        let e = run(&p, &[svc("300")]);
        assert_line(
            &e.lines[0],
            "300",
            "0",
            "0",
            "0",
            "300",
            "0",
            "700",
            Some("4700"),
        );
    }

    #[test]
    fn deductible_partially_met_then_coinsurance() {
        let p = plan("100", ".2", None, Some("5000"));
        let e = run(&p, &[svc("250")]);
        // d = 100, coinsurance = 0.2 * 150 = 30
        assert_line(
            &e.lines[0],
            "100",
            "30",
            "0",
            "0",
            "130",
            "120",
            "0",
            Some("4870"),
        );
    }

    #[test]
    fn coinsurance_only_rounds_at_line_end() {
        let p = plan("0", ".2", None, None);
        let e = run(&p, &[svc("123.47"), svc("123.48"), svc("0.25")]);
        // 24.694 -> 24.69, 24.696 -> 24.70, 0.05 exactly
        assert_line(
            &e.lines[0],
            "0",
            "24.69",
            "0",
            "0",
            "24.69",
            "98.78",
            "0",
            None,
        );
        assert_line(
            &e.lines[1],
            "0",
            "24.70",
            "0",
            "0",
            "24.70",
            "98.78",
            "0",
            None,
        );
        assert_line(
            &e.lines[2],
            "0",
            "0.05",
            "0",
            "0",
            "0.05",
            "0.20",
            "0",
            None,
        );
        // a midpoint rounds half away from zero: 0.1 * 0.25 = 0.025 -> 0.03
        let e = run(&plan("0", ".1", None, None), &[svc("0.25")]);
        assert_eq!(e.lines[0].patient, m("0.03"));
        // 0.15 * 33.33 = 4.9995 -> 5.00
        let e = run(&plan("0", ".15", None, None), &[svc("33.33")]);
        assert_eq!(e.lines[0].patient, m("5.00"));
    }

    #[test]
    fn oop_cap_hit_mid_list() {
        let p = plan("0", ".2", None, Some("200"));
        let e = run(&p, &[svc("500"), svc("600"), svc("300")]);
        assert_line(
            &e.lines[0],
            "0",
            "100",
            "0",
            "0",
            "100",
            "400",
            "0",
            Some("100"),
        );
        // 120 would be owed; only 100 of room is left
        assert_line(
            &e.lines[1],
            "0",
            "120",
            "0",
            "20",
            "100",
            "500",
            "0",
            Some("0"),
        );
        // cap reached: the plan pays everything
        assert_line(
            &e.lines[2],
            "0",
            "60",
            "0",
            "60",
            "0",
            "300",
            "0",
            Some("0"),
        );
        assert_eq!(e.total_patient, m("200"));
        assert_eq!(e.total_plan_pays, m("1200"));
        assert_eq!(e.remaining_oop, Some(m("0")));
    }

    #[test]
    fn oop_cap_smaller_than_deductible_share() {
        let p = plan("500", ".2", None, Some("50"));
        let e = run(&p, &[svc("300")]);
        // 300 would go to the deductible; the cap leaves 50 of it to the patient, and only that
        // much comes off the deductible
        assert_line(
            &e.lines[0],
            "300",
            "0",
            "0",
            "250",
            "50",
            "250",
            "450",
            Some("0"),
        );
    }

    #[test]
    fn several_services_priced_in_order() {
        let p = plan("500", ".2", Some("30"), Some("1000"));
        let services = [copay_svc("120"), svc("200"), svc("1000"), svc("50")];
        let e = run(&p, &services);
        assert_line(
            &e.lines[0],
            "0",
            "0",
            "30",
            "0",
            "30",
            "90",
            "500",
            Some("970"),
        );
        assert_line(
            &e.lines[1],
            "200",
            "0",
            "0",
            "0",
            "200",
            "0",
            "300",
            Some("770"),
        );
        // 300 deductible left, then 0.2 * 700 = 140
        assert_line(
            &e.lines[2],
            "300",
            "140",
            "0",
            "0",
            "440",
            "560",
            "0",
            Some("330"),
        );
        assert_line(
            &e.lines[3],
            "0",
            "10",
            "0",
            "0",
            "10",
            "40",
            "0",
            Some("320"),
        );
        assert_eq!(e.total_patient, m("680"));
        assert_eq!(e.total_plan_pays, m("690"));
        assert_eq!(e.remaining_deductible, m("0"));
        assert_eq!(e.remaining_oop, Some(m("320")));
        // order matters: the same services reversed spend the deductible differently
        let reversed: Vec<_> = services.iter().rev().copied().collect();
        let e2 = run(&p, &reversed);
        assert_eq!(e2.lines[0].patient, m("50"));
        assert_eq!(e2.lines[1].patient, m("450") + m("110"));
    }

    #[test]
    fn zero_allowed() {
        let p = plan("100", ".2", Some("25"), Some("1000"));
        let e = run(&p, &[svc("0"), copay_svc("0")]);
        assert_line(
            &e.lines[0],
            "0",
            "0",
            "0",
            "0",
            "0",
            "0",
            "100",
            Some("1000"),
        );
        assert_line(
            &e.lines[1],
            "0",
            "0",
            "0",
            "0",
            "0",
            "0",
            "100",
            Some("1000"),
        );
    }

    #[test]
    fn deductible_exhausted_exactly() {
        let p = plan("200", ".2", None, Some("1000"));
        let e = run(&p, &[svc("200"), svc("100")]);
        assert_line(
            &e.lines[0],
            "200",
            "0",
            "0",
            "0",
            "200",
            "0",
            "0",
            Some("800"),
        );
        assert_line(
            &e.lines[1],
            "0",
            "20",
            "0",
            "0",
            "20",
            "80",
            "0",
            Some("780"),
        );
    }

    #[test]
    fn no_services() {
        let e = run(&plan("10", ".2", None, Some("20")), &[]);
        assert!(e.lines.is_empty());
        assert_eq!(e.total_patient, Money::ZERO);
        assert_eq!(e.remaining_deductible, m("10"));
    }

    #[test]
    fn rejects_bad_inputs() {
        let p = plan("100", ".2", None, Some("1000"));
        assert_eq!(
            estimate_patient_responsibility(&p, &[svc("10"), svc("-1")]),
            Err(EstimateError::Negative {
                field: "service 2 allowed amount".into(),
                value: m("-1")
            })
        );
        assert_eq!(
            estimate_patient_responsibility(&p, &[copay_svc("10")]),
            Err(EstimateError::MissingCopay { line: 1 })
        );
        let mut q = p.clone();
        q.remaining_deductible = Money::from_decimal(rust_decimal::Decimal::new(1005, 3));
        assert_eq!(
            estimate_patient_responsibility(&q, &[]).map_err(|e| e.to_string()),
            Err("remaining deductible is 1.005; it must be a whole number of cents".into())
        );
    }

    #[test]
    fn the_parts_before_the_cap_add_up_to_the_patient_share() {
        // A 100000.00 charge with 1250.00 of deductible, 20% coinsurance and 4600.00 of
        // out-of-pocket room: 1250 + 19750 - 16400 = 4600.
        let p = plan("1250", ".2", None, Some("4600"));
        let e = run(&p, &[svc("100000")]);
        assert_line(
            &e.lines[0],
            "1250",
            "19750",
            "0",
            "16400",
            "4600",
            "95400",
            "0",
            Some("0"),
        );
        // A copay larger than the room left is capped the same way.
        let e = run(&plan("0", ".2", Some("25"), Some("10")), &[copay_svc("80")]);
        assert_line(
            &e.lines[0],
            "0",
            "0",
            "25",
            "15",
            "10",
            "70",
            "0",
            Some("0"),
        );
    }

    #[test]
    fn units_follow_the_claim_rule() {
        for (text, value) in [("1", "1"), ("2.5", "2.5"), (".25", "0.25"), ("007", "7")] {
            assert_eq!(
                ServiceUnits::parse(text).map(|u| u.to_string()),
                Ok(value.to_owned()),
                "{text}"
            );
        }
        assert_eq!(ServiceUnits::parse("0"), Err(UnitsError::NotPositive));
        assert_eq!(ServiceUnits::parse("0.000"), Err(UnitsError::NotPositive));
        for bad in [
            "",
            "99999999999999999999",
            "1234567890123",
            "1.2345",
            "-1",
            "+1",
            "1e3",
            "1.2.3",
            ".",
            " 1",
            "1,5",
            "NaN",
        ] {
            assert_eq!(ServiceUnits::parse(bad), Err(UnitsError::Syntax), "{bad}");
        }
        assert!(
            !UnitsError::Syntax.to_string().contains("9999"),
            "the value is not echoed"
        );
    }

    #[test]
    fn places_of_service_are_two_digits() {
        assert_eq!(
            PlaceOfService::parse("11").map(|p| p.to_string()),
            Ok("11".into())
        );
        assert_eq!(
            PlaceOfService::parse("02").map(|p| p.to_string()),
            Ok("02".into())
        );
        for bad in ["", "1", "111", "1a", "ab", "１１", " 1"] {
            assert_eq!(
                PlaceOfService::parse(bad),
                Err(PlaceOfServiceError),
                "{bad}"
            );
        }
    }
}
