//! Property tests: parsing never panics on any input, and amounts survive every round trip.

use medbill_domain::{Decimal, Money, Npi, Rate, TenantId, parse_iso_date, parse_x12_date};
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
