//! The medbill claims service: professional (837P) and institutional (837I) claims, their diagnoses and
//! service lines, and the history of their status changes.
//!
//! - [`coverage`]: [`CoverageClient`], CreateClaim's coverage check with the eligibility service over
//!   gRPC (the caller's token forwarded, reads retried).
//! - [`lifecycle`]: which claim status may follow which, and why.
//! - [`model`]: the claim and its validation rules (CLM01, diagnosis pointers, modifiers, total charge).
//! - [`scrub`]: the scrub edits (pure) and ScrubClaim.
//! - [`service`]: [`ClaimsService`], the gRPC service (CreateClaim, GetClaim, ListClaims, ScrubClaim;
//!   the rest answer UNIMPLEMENTED saying what is not built yet).
//! - [`settings`]: the `[claims]` section (code set files, payer scrub rules).
//! - [`store`]: the [`ClaimStore`] trait and its PostgreSQL/SQLite implementation.
//! - [`start`]: the service as the binary runs it (see `medbill_runtime::service`).

pub mod coverage;
pub mod lifecycle;
pub mod model;
pub mod scrub;
pub mod service;
pub mod settings;
pub mod store;

pub use coverage::{CoverageClient, CoverageError};
pub use model::{
    Claim, ClaimFilter, ClaimLine, ClaimStatus, ClaimType, FrequencyCode, NewClaim, NewClaimLine,
    StatusChange, StatusChangeSource,
};
pub use service::ClaimsService;
pub use store::{ClaimStore, ClaimStoreError, SqlClaimStore, open_store};

use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use medbill_runtime::service::{ServiceDef, ServiceParts, StartContext, StartError};
use medbill_runtime::{LoadedConfig, ServiceKind, grpc_route};
pub use settings::{ClaimsConfig, SECTION};

/// The claims service as the binary lists it.
pub const SERVICE: ServiceDef = ServiceDef {
    service: ServiceKind::Claims,
    sections: &[SECTION],
    check: check_settings,
    start: |ctx| Box::pin(start(ctx)),
};

/// Reads and checks the `[claims]` section (without opening its files).
fn check_settings(config: &LoadedConfig) -> Result<(), medbill_runtime::config::ConfigError> {
    ClaimsConfig::load(config).map(drop)
}

/// Starts the claims service: reads its settings and code set files, opens its store (running
/// migrations), connects to eligibility for coverage checks, and returns its gRPC routes.
pub async fn start(ctx: StartContext) -> Result<ServiceParts, StartError> {
    let config = ClaimsConfig::load(ctx.loaded())?;
    let rules = std::sync::Arc::new(config.scrub_rules()?);
    let store = open_store(ctx.database().await?)
        .await
        .map_err(StartError::Migrations)?;
    let eligibility = EligibilityServiceClient::new(ctx.channel(ServiceKind::Eligibility)?);
    let server = ClaimsService::new(store, eligibility, ctx.config().client.retry.clone())
        .with_scrub_rules(rules)
        .into_server();
    Ok(ServiceParts::new().route(grpc_route!(server, ctx.grpc())))
}
