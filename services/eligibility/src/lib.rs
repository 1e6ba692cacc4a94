//! The medbill eligibility service: patients' insurance coverages, real-time eligibility checks
//! (X12 270 -> 271 through `medbill_connect`) with a benefit summary, an answer cache with single
//! flight, patient cost estimates (Good Faith Estimates for self-pay), and prior authorizations
//! (X12 278 request, inquiry and response).
//!
//! - [`model`]: coverages and stored checks as Rust types (PHI redacted from `Debug`);
//! - [`store`]: the [`EligibilityStore`] trait and its PostgreSQL/SQLite implementation, with
//!   [`open_store`] to migrate and connect;
//! - [`exchange`]: the 270 writer call and the 271 summary; [`cache`]: answer cache and single
//!   flight; [`checks`]: CheckEligibility; [`pricing`] and [`estimates`]: EstimatePatientCost;
//! - [`settings`]: the `[eligibility]` section ([`EligibilityConfig`]), the `[[payers]]` table,
//!   and providers, fee schedules and payer identities resolved from them;
//! - [`prior_auth`]: the prior authorization RPCs, their store and the pended-review poller;
//! - [`payer`]: what the 270 and 278 exchanges share (envelope, control numbers, failures);
//! - [`service`]: [`EligibilityService`], the gRPC service;
//! - [`start`]: the service as the binary runs it (see `medbill_runtime::service`).

#![forbid(unsafe_code)]

pub mod cache;
pub mod checks;
pub mod estimates;
pub mod exchange;
pub mod mapping;
pub mod model;
pub mod payer;
pub mod pricing;
pub mod prior_auth;
pub mod service;
pub mod settings;
pub mod store;

pub use model::{CheckFilter, Coverage, CoverageFilter, CoverageOrder, NewCoverage, StoredCheck};
pub use service::EligibilityService;
pub use settings::{
    EligibilityConfig, EligibilitySettings, FeeScheduleConfig, PAYERS_SECTION, Provider,
    ProviderConfig, SECTION, SetupError,
};
pub use store::{EligibilityStore, SqlEligibilityStore, StoreError, open_store};

use medbill_runtime::service::{ServiceDef, ServiceParts, StartContext, StartError};
use medbill_runtime::{LoadedConfig, ServiceKind, grpc_route};

/// The eligibility service as the binary lists it.
pub const SERVICE: ServiceDef = ServiceDef {
    service: ServiceKind::Eligibility,
    sections: &[SECTION, PAYERS_SECTION],
    check: check_settings,
    start: |ctx| Box::pin(start(ctx)),
};

/// Reads and checks the `[eligibility]` section and the `[[payers]]` table, values included
/// (provider NPIs, fee amounts), so `medbill config check` finds what the start would refuse.
fn check_settings(config: &LoadedConfig) -> Result<(), medbill_runtime::config::ConfigError> {
    let (eligibility, payers) = EligibilityConfig::load(config)?;
    EligibilitySettings::from_config(&eligibility, &payers)
        .map(drop)
        .map_err(|e| medbill_runtime::config::ConfigError::Invalid {
            key: SECTION.to_owned(),
            reason: e.to_string(),
        })
}

/// Starts the eligibility service: checks its settings, opens the payer connections, opens its
/// store (running migrations) and returns its gRPC routes. Says at start when no payer
/// connection or no provider is configured, since checks then fail until one is.
pub async fn start(ctx: StartContext) -> Result<ServiceParts, StartError> {
    let (config, payers) = EligibilityConfig::load(ctx.loaded())?;
    let settings = EligibilitySettings::from_config(&config, &payers).map_err(StartError::setup)?;
    let connections = EligibilitySettings::open_connections(&payers).map_err(StartError::setup)?;
    let store = open_store(ctx.database().await?)
        .await
        .map_err(StartError::Migrations)?;
    let service = EligibilityService::with_payers(store, connections, settings);
    let poller = (config.prior_auth_poll_secs > 0).then(|| {
        prior_auth::poller::poll_task(
            service.prior_auths().clone(),
            std::time::Duration::from_secs(config.prior_auth_poll_secs),
        )
    });
    let server = service.into_server();
    let mut parts = ServiceParts::new().route(grpc_route!(server, ctx.grpc()));
    if let Some(poller) = poller {
        parts = parts.task(poller);
    }
    if payers.is_empty() {
        parts = parts.notice(
            "no [[payers]] configured: eligibility checks cannot reach any payer until \
             clearinghouse connections are added (see docs/configuration.md)",
        );
    }
    if config.default_provider.is_none() && config.providers.is_empty() {
        parts = parts.notice(
            "no provider configured (eligibility.default_provider or eligibility.providers): \
             eligibility checks must name the provider",
        );
    }
    Ok(parts)
}
