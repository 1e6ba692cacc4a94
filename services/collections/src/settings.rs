//! The `[collections]` section of the configuration ([`CollectionsConfig`]).
//!
//! ```toml
//! [collections]
//! self_pay_discount = "0.25"   # 25% off a self-pay encounter's charges (BillSelfPay)
//! section_501r = true          # the IRS 501(r) guard before extraordinary collection actions
//!
//! [collections.statements]
//! minimum_balance = "5.00"
//! due_in_days = 30
//!
//! [collections.tenants.clinic-a]
//! section_501r = false         # a for-profit tenant
//!
//! # Training and test environments only (refused when callers are authenticated):
//! [collections.training_clock]
//! date_file = "/srv/medbill-training/today"   # today's date, YYYY-MM-DD, read at each call
//! ```

use std::collections::BTreeMap;

use medbill_domain::{Money, Rate, TenantId};
use medbill_runtime::LoadedConfig;
use medbill_runtime::config::ConfigError;
use serde::{Deserialize, Serialize};

/// Top-level configuration key of the collections section.
pub const SECTION: &str = "collections";

/// Holds the `[collections]` section as configured.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectionsConfig {
    /// Fraction taken off a self-pay encounter's gross charges, from 0 to 1 (`"0.25"` = 25%);
    /// 0 by default.
    pub self_pay_discount: Rate,
    /// Whether tenants are tax-exempt hospital facilities bound by IRS 501(r) (the guard before
    /// extraordinary collection actions); on by default, the safe reading.
    pub section_501r: bool,
    /// What a statement says and when it is due.
    pub statements: StatementSettings,
    /// Payment plan policy.
    pub payment_plans: PlanSettings,
    /// The dunning cadence.
    pub dunning: DunningSettings,
    /// The collection agencies accounts may be placed with.
    pub agencies: Vec<AgencySettings>,
    /// Per-tenant overrides, by tenant id.
    pub tenants: BTreeMap<String, TenantSettings>,
    /// Today's date from a file instead of the system clock, for training and test
    /// environments; unset (the system clock) by default.
    pub training_clock: Option<TrainingClock>,
}

/// The `[collections.training_clock]` table: today's date is what a file says, so a training
/// environment walks a months-long collection story (statements, plan installments missed,
/// dunning stages, the 501(r) waiting periods) in minutes by rewriting the file. Dates that
/// start legal clocks are then set at will, so a server that authenticates its callers (a
/// production server) refuses it at start.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingClock {
    /// The file holding today's date (`YYYY-MM-DD`); read at each call, it must hold a date
    /// at start.
    pub date_file: std::path::PathBuf,
}

impl Default for CollectionsConfig {
    fn default() -> Self {
        Self {
            self_pay_discount: Rate::ZERO,
            section_501r: true,
            statements: StatementSettings::default(),
            payment_plans: PlanSettings::default(),
            dunning: DunningSettings::default(),
            agencies: Vec::new(),
            tenants: BTreeMap::new(),
            training_clock: None,
        }
    }
}

/// The `[collections.statements]` table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatementSettings {
    /// Accounts owing less than this get no statement (GenerateStatements' default).
    pub minimum_balance: Money,
    /// Days from the statement date to the due date (GenerateStatements' default).
    pub due_in_days: u32,
    /// The name printed at the top of each statement.
    pub facility_name: String,
    /// How to pay and whom to call, printed on each statement.
    pub contact_text: String,
    /// The plain-language summary of the financial assistance policy (IRS 501(r)), printed on
    /// each statement.
    pub financial_assistance_summary: String,
    /// Accounts a statement cycle covers per transaction (read together, written with
    /// multi-row INSERTs); 1000 by default.
    pub batch_accounts: u32,
}

impl Default for StatementSettings {
    fn default() -> Self {
        Self {
            minimum_balance: Money::from_minor_units(1),
            due_in_days: 30,
            facility_name: "Patient Billing Office".to_owned(),
            contact_text: "Pay online, by phone or by mail with the account number above. \
                Questions about your bill? Call the billing office, Monday to Friday."
                .to_owned(),
            financial_assistance_summary: "Financial assistance is available. If you cannot pay \
                this bill in full, you may qualify for free or discounted care under our \
                financial assistance policy, based on your household income and size. Ask the \
                billing office for an application or a free copy of the policy and its \
                plain-language summary. Applying stops collection actions while we review it."
                .to_owned(),
            batch_accounts: 1000,
        }
    }
}

/// The `[collections.payment_plans]` table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanSettings {
    /// The smallest regular installment a plan may have.
    pub minimum_installment: Money,
    /// The most installments a plan may have.
    pub max_installments: u32,
    /// Days after its due date before an unpaid installment counts as missed.
    pub grace_days: u32,
    /// Missed installments that default a plan (fewer make it DELINQUENT).
    pub default_after_missed: u32,
}

impl Default for PlanSettings {
    fn default() -> Self {
        Self {
            minimum_installment: Money::from_minor_units(2500),
            max_installments: 60,
            grace_days: 10,
            default_after_missed: 2,
        }
    }
}

/// What a dunning stage does when an account reaches it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StageAction {
    /// Send a statement.
    Statement,
    /// Send a statement with a past-due reminder.
    Reminder,
    /// Send the written final notice (the 30-day notice 501(r) requires before an
    /// extraordinary collection action).
    FinalNotice,
    /// The account may be placed with an agency (PlaceWithAgency still decides).
    AgencyEligible,
}

/// One stage of the dunning cadence (`[[collections.dunning.stages]]`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DunningStage {
    /// The stage's name, shown on the account.
    pub name: String,
    /// Days since the first statement from which the stage is due.
    pub after_days: u32,
    /// What reaching it does.
    pub action: StageAction,
    /// The message printed on the stage's statement; `{allowed_date}` is replaced by the first
    /// date an extraordinary collection action may start.
    #[serde(default)]
    pub message: String,
}

/// The `[collections.dunning]` table.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DunningSettings {
    /// The stages, in order of `after_days`.
    pub stages: Vec<DunningStage>,
    /// Balances owed below this are written off (SMALL_BALANCE) by RunDunning.
    pub small_balance_threshold: Money,
}

impl Default for DunningSettings {
    fn default() -> Self {
        let stage = |name: &str, after_days, action, message: &str| DunningStage {
            name: name.to_owned(),
            after_days,
            action,
            message: message.to_owned(),
        };
        Self {
            stages: vec![
                stage("statement 1", 0, StageAction::Statement, ""),
                stage(
                    "statement 2",
                    30,
                    StageAction::Reminder,
                    "Your balance is past due. Please pay it, or call us to set up a payment plan \
                     or to apply for financial assistance.",
                ),
                stage(
                    "final notice",
                    60,
                    StageAction::FinalNotice,
                    "FINAL NOTICE: unless this balance is paid, a payment plan is agreed or you \
                     apply for financial assistance, this account may be referred to a collection \
                     agency on or after {allowed_date}. Financial assistance is available: ask us \
                     for the policy and an application.",
                ),
                stage("pre-collection", 90, StageAction::AgencyEligible, ""),
            ],
            small_balance_threshold: Money::from_minor_units(500),
        }
    }
}

/// A collection agency (`[[collections.agencies]]`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgencySettings {
    /// The agency's id, as PlaceWithAgency names it.
    pub id: String,
    /// The agency's fee on what it collects, from 0 to 1 (`"0.25"` = 25%).
    pub fee_rate: Rate,
}

/// One tenant's overrides (`[collections.tenants.<tenant id>]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettings {
    /// Overrides `collections.section_501r` for this tenant.
    pub section_501r: Option<bool>,
}

impl CollectionsConfig {
    /// Reads the `[collections]` section (a rate outside 0..=1 is refused naming the key).
    ///
    /// # Errors
    /// [`ConfigError`] naming the key.
    pub fn load(config: &LoadedConfig) -> Result<Self, ConfigError> {
        config.section(SECTION)
    }

    /// Returns whether the IRS 501(r) guard applies to `tenant`.
    pub fn section_501r(&self, tenant: &TenantId) -> bool {
        self.tenants
            .get(tenant.as_str())
            .and_then(|t| t.section_501r)
            .unwrap_or(self.section_501r)
    }
}

/// Reads and checks the `[collections]` section (the binary's `check`): a training clock is
/// refused unless the server runs without authentication (dev mode).
pub fn check(config: &LoadedConfig) -> Result<(), ConfigError> {
    let collections = CollectionsConfig::load(config)?;
    if collections.training_clock.is_some() && !config.config().auth.is_dev_mode() {
        return Err(ConfigError::Invalid {
            key: format!("{SECTION}.training_clock"),
            reason: "is for training and test environments only, and this server authenticates \
                     its callers (auth is configured): statement and dunning dates must follow \
                     the real calendar"
                .to_owned(),
        });
    }
    Ok(())
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

    #[test]
    fn section_501r_is_on_unless_a_tenant_turns_it_off() {
        let c: CollectionsConfig = toml::from_str(
            "[statements]\nminimum_balance = \"5.00\"\n[tenants.t2]\nsection_501r = false",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let t = |s: &str| TenantId::parse(s).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.section_501r(&t("t1")));
        assert!(!c.section_501r(&t("t2")));
        assert_eq!(c.statements.minimum_balance, Money::from_minor_units(500));
        assert_eq!(c.statements.due_in_days, 30);
        assert!(toml::from_str::<CollectionsConfig>("[statements]\nminimum = \"1\"").is_err());
    }
}
