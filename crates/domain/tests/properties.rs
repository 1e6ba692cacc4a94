//! Property tests: parsing never panics on any input, amounts survive every round trip, and an
//! estimate's parts always add up to the patient's share.

use medbill_domain::{
    CopayRule, Decimal, Money, Npi, PlanBenefits, Rate, ServiceToPrice, TenantId,
    estimate_patient_responsibility, parse_iso_date, parse_x12_date,
};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsers_never_panic(s in ".{0,40}") {
        let _ = Money::parse(&s);
        let _ = Rate::parse(&s);
        let _ = Npi::parse(&s);
        let _ = TenantId::parse(&s);
        let _ = parse_iso_date(&s);
        let _ = parse_x12_date(&s);
    }

    #[test]
    fn numeric_looking_junk_never_panics(s in "[-+0-9.eE ]{0,24}") {
        if let Ok(m) = Money::parse(&s) {
            // anything accepted converts to cents and prints back to the same value
            let cents = m.to_minor_units();
            prop_assert!(cents.is_ok(), "{s} -> {cents:?}");
            prop_assert_eq!(Money::parse(&m.to_string()), Ok(m));
        }
    }

    #[test]
    fn cents_round_trip(cents in -999_999_999_999_999_999i64..=999_999_999_999_999_999i64) {
        let m = Money::from_minor_units(cents);
        prop_assert_eq!(m.to_minor_units(), Ok(cents));
        let text = m.to_string();
        let (_, frac) = text.split_once('.').unwrap_or(("", ""));
        prop_assert_eq!(frac.len(), 2, "{}", text);
        prop_assert_eq!(Money::parse(&text), Ok(m));
        let json = serde_json::to_string(&m).unwrap_or_default();
        prop_assert_eq!(serde_json::from_str::<Money>(&json).ok(), Some(m));
    }

    #[test]
    fn rounding_is_idempotent_and_close(mantissa in -10_000_000_000i64..10_000_000_000i64, scale in 0u32..8) {
        let m = Money::from_decimal(Decimal::new(mantissa, scale));
        let r = m.round_cents();
        prop_assert!(r.is_whole_cents());
        prop_assert_eq!(r.round_cents(), r);
        let diff = (r - m).abs().as_decimal();
        prop_assert!(diff <= Decimal::new(5, 3), "{m} -> {r}");
        // half away from zero: symmetric around zero
        prop_assert_eq!((-m).round_cents(), -r);
    }

    #[test]
    fn rates_in_range_round_trip(num in 0u32..=10_000u32) {
        let rate = Rate::new(Decimal::new(i64::from(num), 4));
        prop_assert!(rate.is_ok());
        let rate = rate.unwrap_or_default();
        prop_assert_eq!(Rate::parse(&rate.to_string()), Ok(rate));
    }
}

/// An amount in whole cents up to `max_cents`.
fn cents(max_cents: i64) -> impl Strategy<Value = Money> {
    (0..=max_cents).prop_map(Money::from_minor_units)
}

/// A service priced with or without a copay of its own.
fn service() -> impl Strategy<Value = ServiceToPrice> {
    (
        cents(20_000_000),
        prop_oneof![
            Just(CopayRule::None),
            Just(CopayRule::Plan),
            cents(50_000).prop_map(CopayRule::Amount),
        ],
    )
        .prop_map(|(allowed, copay)| ServiceToPrice { allowed, copay })
}

fn plan() -> impl Strategy<Value = PlanBenefits> {
    (
        cents(1_000_000),
        0u32..=10_000,
        cents(20_000),
        proptest::option::of(cents(2_000_000)),
    )
        .prop_map(
            |(remaining_deductible, c, copay, remaining_oop)| PlanBenefits {
                remaining_deductible,
                coinsurance: Rate::new(Decimal::new(i64::from(c), 4)).unwrap_or_default(),
                copay: Some(copay),
                remaining_oop,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn estimate_parts_always_add_up(benefits in plan(), services in proptest::collection::vec(service(), 0..8)) {
        let estimate = match estimate_patient_responsibility(&benefits, &services) {
            Ok(e) => e,
            Err(e) => return Err(TestCaseError::fail(format!("refused valid input: {e}"))),
        };
        let mut room = benefits.remaining_oop;
        let mut deductible_left = benefits.remaining_deductible;
        for (line, service) in estimate.lines.iter().zip(&services) {
            prop_assert_eq!(line.allowed, service.allowed);
            prop_assert_eq!(line.deductible + line.coinsurance + line.copay - line.capped_by_oop, line.patient, "{:?}", line);
            prop_assert_eq!(line.patient + line.plan_pays, line.allowed, "{:?}", line);
            for part in [line.deductible, line.coinsurance, line.copay, line.capped_by_oop, line.patient, line.plan_pays] {
                prop_assert!(!part.is_negative() && part.is_whole_cents(), "{:?}", line);
            }
            prop_assert!(line.patient <= line.allowed, "{:?}", line);
            if let Some(m) = room {
                prop_assert!(line.patient <= m, "{:?}", line);
            }
            prop_assert!(line.remaining_deductible <= deductible_left);
            room = line.remaining_oop;
            deductible_left = line.remaining_deductible;
        }
        let total: Money = estimate.lines.iter().map(|l| l.patient).sum();
        prop_assert_eq!(estimate.total_patient, total);
        let allowed: Money = services.iter().map(|s| s.allowed).sum();
        prop_assert_eq!(estimate.total_patient + estimate.total_plan_pays, allowed);
    }
}
