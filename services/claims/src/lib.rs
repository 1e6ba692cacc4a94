//! The medbill claims service: professional (837P) and institutional (837I) claims, their diagnoses and
//! service lines, and the history of their status changes.
//!
//! - [`coverage`]: [`CoverageClient`], CreateClaim's coverage check with the eligibility service over
//!   gRPC (the caller's token forwarded, reads retried).
//! - [`details`]: what a claim carries only for its 837 (demographics, other providers,
//!   authorization numbers, institutional fields, the coverage snapshot).
//! - [`lifecycle`]: which claim status may follow which, and why.
//! - [`model`]: the claim and its validation rules (CLM01, diagnosis pointers, modifiers, total charge).
//! - [`providers`]: the tenant's providers and service facilities (CreateProvider and friends).
//! - [`service`]: [`ClaimsService`], the gRPC service (CreateClaim, GetClaim, ListClaims; the rest answer
//!   UNIMPLEMENTED saying what is not built yet).
//! - [`store`]: the [`ClaimStore`] trait and its PostgreSQL/SQLite implementation.
//! - [`start`]: the service as the binary runs it (see `medbill_runtime::service`).

pub mod coverage;
pub mod details;
pub mod lifecycle;
pub mod model;
pub mod providers;
pub mod service;
pub mod store;

pub use coverage::{CoverageClient, CoverageError};
pub use model::{
    Claim, ClaimFilter, ClaimLine, ClaimStatus, ClaimType, FrequencyCode, NewClaim, NewClaimLine,
    StatusChange, StatusChangeSource,
};
pub use service::ClaimsService;
pub use store::{ClaimStore, ClaimStoreError, SqlClaimStore, open_store};

use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use medbill_runtime::service::{ServiceDef, ServiceParts, StartContext, StartError, no_settings};
use medbill_runtime::{ServiceKind, grpc_route};

/// The claims service as the binary lists it (no settings of its own yet).
pub const SERVICE: ServiceDef = ServiceDef {
    service: ServiceKind::Claims,
    sections: &[],
    check: no_settings,
    start: |ctx| Box::pin(start(ctx)),
};

/// Starts the claims service: opens its store (running migrations), connects to eligibility
/// for coverage checks, and returns its gRPC routes.
pub async fn start(ctx: StartContext) -> Result<ServiceParts, StartError> {
    let store = open_store(ctx.database().await?)
        .await
        .map_err(StartError::Migrations)?;
    let eligibility = EligibilityServiceClient::new(ctx.channel(ServiceKind::Eligibility)?);
    let server =
        ClaimsService::new(store, eligibility, ctx.config().client.retry.clone()).into_server();
    Ok(ServiceParts::new().route(grpc_route!(server, ctx.grpc())))
}
