//! Eligibility settings: the `[eligibility]` section ([`EligibilityConfig`]) and the
//! `[[payers]]` table (medbill-connect's [`PayerConnection`]) as configured, and
//! [`EligibilitySettings`], the same resolved at start (payer envelope identities, providers per
//! tenant, fee schedules), checked once so requests never meet a bad value.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use medbill_connect::{ConfigError, Connections, PayerConnection};
use medbill_domain::{Money, Npi};
use medbill_runtime::LoadedConfig;
use serde::{Deserialize, Serialize};

/// Top-level configuration key of the eligibility section.
pub const SECTION: &str = "eligibility";
/// Top-level configuration key of the payer connections (`[[payers]]`), shared with any other
/// service that reaches payers.
pub const PAYERS_SECTION: &str = "payers";

/// Holds the `[eligibility]` section as configured.
///
/// ```toml
/// [eligibility]
/// cache_ttl_secs = 3600
/// [eligibility.default_provider]          # the 270's information receiver when a call names none
/// npi = "1234567893"
/// organization_name = "MAIN STREET CLINIC"
/// [eligibility.providers.clinic-a]        # per-tenant provider (wins over the default)
/// npi = "1245319599"
/// organization_name = "CLINIC A"
/// [[eligibility.fee_schedules]]           # allowed amounts per tenant and payer
/// tenant = "clinic-a"
/// payer_id = "60054"                      # omit for the tenant's self-pay rates
/// allowed = { "99213" = "92.00", "80053" = "14.50" }
/// ```
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EligibilityConfig {
    /// How long a 271 answer is reused for the same patient, payer and date of service.
    pub cache_ttl_secs: u64,
    /// Most answers kept in the in-memory cache; the oldest are dropped beyond it.
    pub cache_max_entries: usize,
    /// Provider asking (270 loop 2100B) when neither the call nor `providers` names one.
    pub default_provider: Option<ProviderConfig>,
    /// Provider asking, per tenant id.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Allowed amounts per tenant and payer for cost estimates.
    pub fee_schedules: Vec<FeeScheduleConfig>,
    /// Seconds between passes of the background task that asks payers again about pended prior
    /// authorizations (each is asked at most once per interval); 0 turns the task off.
    pub prior_auth_poll_secs: u64,
}

impl Default for EligibilityConfig {
    fn default() -> Self {
        Self {
            cache_ttl_secs: 24 * 60 * 60,
            cache_max_entries: 100_000,
            default_provider: None,
            providers: BTreeMap::new(),
            fee_schedules: Vec::new(),
            prior_auth_poll_secs: 300,
        }
    }
}

impl EligibilityConfig {
    /// Returns the cache time-to-live.
    pub fn cache_ttl(&self) -> Duration {
        Duration::from_secs(self.cache_ttl_secs)
    }

    /// Returns the provider configured for `tenant`, else the default one.
    pub fn provider_for(&self, tenant: &str) -> Option<&ProviderConfig> {
        self.providers
            .get(tenant)
            .or(self.default_provider.as_ref())
    }

    /// Reads the `[eligibility]` section and the `[[payers]]` table and checks what can be
    /// checked without opening anything: ranges, empty names, payer connection settings,
    /// payer ids configured twice. Errors name the key.
    pub fn load(
        config: &LoadedConfig,
    ) -> Result<(Self, Vec<PayerConnection>), medbill_runtime::config::ConfigError> {
        use medbill_runtime::config::ConfigError as Invalid;
        let invalid = |key: String, reason: &str| Invalid::Invalid {
            key,
            reason: reason.to_owned(),
        };
        let eligibility: Self = config.section(SECTION)?;
        let payers: Vec<PayerConnection> = config.section(PAYERS_SECTION)?;
        if eligibility.cache_max_entries == 0 {
            return Err(invalid(
                "eligibility.cache_max_entries".into(),
                "must be at least 1",
            ));
        }
        for (i, schedule) in eligibility.fee_schedules.iter().enumerate() {
            if schedule.tenant.trim().is_empty() {
                return Err(invalid(
                    format!("eligibility.fee_schedules[{i}].tenant"),
                    "must not be empty",
                ));
            }
        }
        let mut payer_ids = BTreeSet::new();
        for payer in &payers {
            if let Err(e) = payer.validate() {
                return Err(invalid(
                    format!("payers.{}", payer.payer_id),
                    &e.to_string(),
                ));
            }
            if !payer_ids.insert(payer.payer_id.as_str()) {
                return Err(invalid(
                    format!("payers.{}", payer.payer_id),
                    "payer id configured twice",
                ));
            }
        }
        Ok((eligibility, payers))
    }
}

/// Identifies a provider in eligibility inquiries (not PHI).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// National Provider Identifier (10 digits, Luhn check digit).
    pub npi: String,
    /// Organisation name as sent to payers (NM103).
    pub organization_name: String,
    /// Employer identification number (9 digits); used as the 270 trace originator when set.
    #[serde(default)]
    pub tax_id: Option<String>,
}

/// Allowed amounts for one tenant and payer (or the tenant's self-pay rates when `payer_id` is
/// absent): procedure code -> amount per unit as a decimal string.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FeeScheduleConfig {
    /// Tenant id the schedule belongs to.
    pub tenant: String,
    /// Payer id; absent means self-pay rates.
    #[serde(default)]
    pub payer_id: Option<String>,
    /// Procedure code (CPT/HCPCS) -> allowed amount per unit, e.g. `"92.00"`.
    pub allowed: BTreeMap<String, String>,
}

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

    fn payer(id: &str) -> PayerConnection {
        PayerConnection {
            payer_id: id.into(),
            sender_id: "MEDBILL01".into(),
            receiver_id: "ACMEHEALTH".into(),
            transport: medbill_connect::TransportConfig::CoreHttp(
                medbill_connect::CoreHttpConfig::new("http://127.0.0.1:9/core"),
            ),
            batch_transport: None,
            retry: medbill_connect::RetryPolicy::default(),
        }
    }

    #[test]
    fn the_section_and_the_payer_table_are_read_from_the_loaded_configuration() {
        let loaded = LoadedConfig::default()
            .with_value("eligibility.cache_ttl_secs", 60)
            .with_value(
                "eligibility.providers.clinic-a",
                ProviderConfig {
                    npi: "1245319599".into(),
                    organization_name: "CLINIC A".into(),
                    tax_id: Some("123456789".into()),
                },
            )
            .with_value("payers", vec![payer("60054")]);
        let (config, payers) = EligibilityConfig::load(&loaded).expect("valid");
        assert_eq!(config.cache_ttl(), Duration::from_secs(60));
        assert_eq!(config.cache_max_entries, 100_000, "default kept");
        assert_eq!(
            config.provider_for("clinic-a").map(|p| p.npi.as_str()),
            Some("1245319599")
        );
        assert_eq!(config.provider_for("other"), None);
        assert_eq!(payers, vec![payer("60054")]);

        let (config, payers) = EligibilityConfig::load(&LoadedConfig::default()).expect("empty");
        assert!(payers.is_empty());
        assert!(config.fee_schedules.is_empty());
    }

    #[test]
    fn bad_sections_are_refused_naming_the_key() {
        let err = |loaded: LoadedConfig| {
            EligibilityConfig::load(&loaded)
                .expect_err("invalid")
                .to_string()
        };
        let typo = err(LoadedConfig::default().with_value("eligibility.cache_tll_secs", 1));
        assert!(typo.contains("eligibility.cache_tll_secs"), "{typo}");
        let zero = err(LoadedConfig::default().with_value("eligibility.cache_max_entries", 0));
        assert!(zero.contains("eligibility.cache_max_entries"), "{zero}");
        let tenant = err(LoadedConfig::default().with_value(
            "eligibility.fee_schedules",
            vec![FeeScheduleConfig {
                tenant: " ".into(),
                payer_id: None,
                allowed: BTreeMap::new(),
            }],
        ));
        assert!(
            tenant.contains("eligibility.fee_schedules[0].tenant"),
            "{tenant}"
        );
        let twice =
            err(LoadedConfig::default().with_value("payers", vec![payer("60054"), payer("60054")]));
        assert!(twice.contains("payers.60054"), "{twice}");
        assert!(twice.contains("configured twice"), "{twice}");
        let mut bad = payer("60054");
        bad.sender_id = String::new();
        let invalid = err(LoadedConfig::default().with_value("payers", vec![bad]));
        assert!(invalid.contains("payers.60054"), "{invalid}");
    }
}
