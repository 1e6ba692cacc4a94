//! The `[collections]` section of the configuration ([`CollectionsConfig`]).
//!
//! ```toml
//! [collections]
//! self_pay_discount = "0.25"   # 25% off a self-pay encounter's charges (BillSelfPay)
//! ```

use medbill_domain::Rate;
use medbill_runtime::LoadedConfig;
use medbill_runtime::config::ConfigError;
use serde::{Deserialize, Serialize};

/// Top-level configuration key of the collections section.
pub const SECTION: &str = "collections";

/// Holds the `[collections]` section as configured.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectionsConfig {
    /// Fraction taken off a self-pay encounter's gross charges, from 0 to 1 (`"0.25"` = 25%);
    /// 0 by default.
    pub self_pay_discount: Rate,
}

impl CollectionsConfig {
    /// Reads the `[collections]` section (a rate outside 0..=1 is refused naming the key).
    ///
    /// # Errors
    /// [`ConfigError`] naming the key.
    pub fn load(config: &LoadedConfig) -> Result<Self, ConfigError> {
        config.section(SECTION)
    }
}

/// Reads and checks the `[collections]` section (the binary's `check`).
pub fn check(config: &LoadedConfig) -> Result<(), ConfigError> {
    CollectionsConfig::load(config).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_discount_is_a_rate() {
        let c: CollectionsConfig =
            toml::from_str("self_pay_discount = \"0.25\"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.self_pay_discount, Rate::parse("0.25").unwrap_or_default());
        assert!(toml::from_str::<CollectionsConfig>("self_pay_discount = \"1.5\"").is_err());
        assert!(toml::from_str::<CollectionsConfig>("discount = \"0.1\"").is_err());
        assert_eq!(CollectionsConfig::default().self_pay_discount, Rate::ZERO);
    }
}
