//! Eligibility settings resolved from configuration at start: payer envelope identities,
//! providers per tenant and fee schedules, checked once so requests never meet a bad value.

use std::collections::HashMap;
use std::time::Duration;

use medbill_connect::{ConfigError, Connections, PayerConnection};
use medbill_domain::{Money, Npi};
use medbill_runtime::config::{EligibilityConfig, ProviderConfig};

/// Why the eligibility settings cannot be built from configuration.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A fee schedule amount is not a non-negative amount of whole cents.
    #[error(
        "eligibility.fee_schedules: tenant {tenant:?}, payer {payer}, procedure {code:?}: {reason}"
    )]
    FeeSchedule {
        /// Tenant of the schedule.
        tenant: String,
        /// Payer of the schedule (`self-pay` when none).
        payer: String,
        /// Procedure code.
        code: String,
        /// What is wrong.
        reason: String,
    },
    /// A provider's NPI or name is unusable.
    #[error("eligibility provider for {scope}: {reason}")]
    Provider {
        /// `default_provider` or `providers.<tenant>`.
        scope: String,
        /// What is wrong.
        reason: String,
    },
    /// A payer connection cannot be opened.
    #[error(transparent)]
    Connection(#[from] ConfigError),
}

/// The provider asking in a 270.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// NPI, check digit verified.
    pub npi: String,
    /// Organisation name.
    pub name: String,
    /// TRN03 originator: "1" and the tax id, or a fixed medbill id.
    pub originator: String,
}

/// The fixed TRN03 used when a provider has no tax id configured (10 characters).
pub const DEFAULT_ORIGINATOR: &str = "9MEDBILL01";

impl Provider {
    /// Checks a configured provider.
    pub fn from_config(scope: &str, p: &ProviderConfig) -> Result<Self, SetupError> {
        let err = |reason: String| SetupError::Provider {
            scope: scope.to_owned(),
            reason,
        };
        let npi = Npi::parse(&p.npi).map_err(|e| err(format!("npi: {e}")))?;
        if p.organization_name.trim().is_empty() || p.organization_name.len() > 60 {
            return Err(err("organization_name must be 1 to 60 characters".into()));
        }
        let originator = match &p.tax_id {
            Some(t) if t.len() == 9 && t.bytes().all(|b| b.is_ascii_digit()) => format!("1{t}"),
            Some(_) => return Err(err("tax_id must be 9 digits".into())),
            None => DEFAULT_ORIGINATOR.to_owned(),
        };
        Ok(Self {
            npi: npi.to_string(),
            name: p.organization_name.clone(),
            originator,
        })
    }
}

/// Envelope identities used with one payer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayerIds {
    /// Our sender id.
    pub sender_id: String,
    /// The payer's receiver id.
    pub receiver_id: String,
}

/// Fee schedule key: tenant and payer (`None` = self-pay rates).
type ScheduleKey = (String, Option<String>);

/// Everything the eligibility checks and estimates need besides the store.
#[derive(Debug, Clone)]
pub struct EligibilitySettings {
    /// How long answers are reused.
    pub cache_ttl: Duration,
    /// Bound on cached answers.
    pub cache_max_entries: usize,
    default_provider: Option<Provider>,
    providers: HashMap<String, Provider>,
    fee_schedules: HashMap<ScheduleKey, HashMap<String, Money>>,
    payers: HashMap<String, PayerIds>,
}

impl Default for EligibilitySettings {
    fn default() -> Self {
        Self::from_config(&EligibilityConfig::default(), &[]).unwrap_or_else(|_| Self {
            cache_ttl: Duration::from_secs(86_400),
            cache_max_entries: 100_000,
            default_provider: None,
            providers: HashMap::new(),
            fee_schedules: HashMap::new(),
            payers: HashMap::new(),
        })
    }
}

impl EligibilitySettings {
    /// Checks and indexes the eligibility section and the payer table.
    pub fn from_config(
        config: &EligibilityConfig,
        payers: &[PayerConnection],
    ) -> Result<Self, SetupError> {
        let default_provider = config
            .default_provider
            .as_ref()
            .map(|p| Provider::from_config("default_provider", p))
            .transpose()?;
        let mut providers = HashMap::new();
        for (tenant, p) in &config.providers {
            providers.insert(
                tenant.clone(),
                Provider::from_config(&format!("providers.{tenant}"), p)?,
            );
        }
        let mut fee_schedules: HashMap<ScheduleKey, HashMap<String, Money>> = HashMap::new();
        for schedule in &config.fee_schedules {
            let entry = fee_schedules
                .entry((schedule.tenant.clone(), schedule.payer_id.clone()))
                .or_default();
            for (code, amount) in &schedule.allowed {
                let err = |reason: String| SetupError::FeeSchedule {
                    tenant: schedule.tenant.clone(),
                    payer: schedule
                        .payer_id
                        .clone()
                        .unwrap_or_else(|| "self-pay".to_owned()),
                    code: code.clone(),
                    reason,
                };
                let money = Money::parse(amount).map_err(|e| err(e.to_string()))?;
                if money.is_negative() || !money.is_whole_cents() {
                    return Err(err(format!(
                        "{amount} must be a non-negative amount in whole cents"
                    )));
                }
                entry.insert(code.clone(), money);
            }
        }
        let payers = payers
            .iter()
            .map(|p| {
                (
                    p.payer_id.clone(),
                    PayerIds {
                        sender_id: p.sender_id.clone(),
                        receiver_id: p.receiver_id.clone(),
                    },
                )
            })
            .collect();
        Ok(Self {
            cache_ttl: config.cache_ttl(),
            cache_max_entries: config.cache_max_entries.max(1),
            default_provider,
            providers,
            fee_schedules,
            payers,
        })
    }

    /// Opens the payer connections of `payers` (reads secrets, builds HTTP clients).
    pub fn open_connections(payers: &[PayerConnection]) -> Result<Connections, SetupError> {
        Ok(Connections::open(payers)?)
    }

    /// Returns the provider configured for `tenant`, else the default one.
    pub fn provider_for(&self, tenant: &str) -> Option<&Provider> {
        self.providers
            .get(tenant)
            .or(self.default_provider.as_ref())
    }

    /// Returns the envelope identities for `payer_id` (defaults when the payer table has none).
    pub fn payer_ids(&self, payer_id: &str) -> PayerIds {
        self.payers
            .get(payer_id)
            .cloned()
            .unwrap_or_else(|| PayerIds {
                sender_id: "MEDBILL".to_owned(),
                receiver_id: payer_id.to_owned(),
            })
    }

    /// Returns the allowed amount per unit for a procedure under a tenant's schedule for the
    /// payer (`None` payer = self-pay rates).
    pub fn allowed_amount(&self, tenant: &str, payer: Option<&str>, code: &str) -> Option<Money> {
        self.fee_schedules
            .get(&(tenant.to_owned(), payer.map(str::to_owned)))
            .and_then(|s| s.get(code))
            .copied()
    }

    /// Adds or replaces one fee schedule entry (tests and tools).
    pub fn set_allowed_amount(
        &mut self,
        tenant: &str,
        payer: Option<&str>,
        code: &str,
        amount: Money,
    ) {
        self.fee_schedules
            .entry((tenant.to_owned(), payer.map(str::to_owned)))
            .or_default()
            .insert(code.to_owned(), amount);
    }

    /// Sets the default provider (tests and tools).
    pub fn set_default_provider(&mut self, provider: Provider) {
        self.default_provider = Some(provider);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medbill_runtime::config::FeeScheduleConfig;
    use std::collections::BTreeMap;

    #[test]
    fn fee_schedules_and_providers_are_checked_and_indexed() {
        let mut config = EligibilityConfig {
            default_provider: Some(ProviderConfig {
                npi: "1234567893".into(),
                organization_name: "MAIN".into(),
                tax_id: None,
            }),
            fee_schedules: vec![FeeScheduleConfig {
                tenant: "a".into(),
                payer_id: Some("60054".into()),
                allowed: BTreeMap::from([("99213".into(), "92.00".into())]),
            }],
            ..EligibilityConfig::default()
        };
        let s = EligibilitySettings::from_config(&config, &[]).expect("valid");
        assert_eq!(
            s.allowed_amount("a", Some("60054"), "99213"),
            Money::parse("92.00").ok()
        );
        assert_eq!(s.allowed_amount("a", None, "99213"), None);
        assert_eq!(s.allowed_amount("b", Some("60054"), "99213"), None);
        assert_eq!(
            s.provider_for("any").map(|p| p.originator.as_str()),
            Some(DEFAULT_ORIGINATOR)
        );

        config.fee_schedules[0]
            .allowed
            .insert("80053".into(), "1.005".into());
        let err = EligibilitySettings::from_config(&config, &[]).expect_err("fraction");
        assert!(err.to_string().contains("80053"), "{err}");

        let bad = EligibilityConfig {
            default_provider: Some(ProviderConfig {
                npi: "1234567890".into(),
                organization_name: "MAIN".into(),
                tax_id: None,
            }),
            ..EligibilityConfig::default()
        };
        let err = EligibilitySettings::from_config(&bad, &[]).expect_err("npi");
        assert!(err.to_string().contains("default_provider"), "{err}");
    }
}
