//! The medbill claims service: professional (837P) and institutional (837I) claims, their diagnoses and
//! service lines, and the history of their status changes.
//!
//! - [`adjudication`]: payer adjudications (835) and the rules that turn one into a claim status.
//! - [`aging`]: insurance A/R aging buckets.
//! - [`watch`]: [`watch::WatchHub`], WatchClaims' replay-then-live stream.
//! - [`coverage`]: [`CoverageClient`], CreateClaim's coverage check with the eligibility service over
//!   gRPC (the caller's token forwarded, reads retried).
//! - [`lifecycle`]: which claim status may follow which, and why.
//! - [`model`]: the claim and its validation rules (CLM01, diagnosis pointers, modifiers, total charge).
//! - [`service`]: [`ClaimsService`], the gRPC service; the RPCs after submission (ApplyAdjudication,
//!   CorrectClaim, VoidClaim, WatchClaims, ListClaimEvents, GetInsuranceAging) are in `rpc/`.
//! - [`store`]: the [`ClaimStore`] trait and its PostgreSQL/SQLite implementation.
//! - [`start`]: the service as the binary runs it (see `medbill_runtime::service`).

pub mod adjudication;
pub mod aging;
pub mod coverage;
pub mod lifecycle;
pub mod model;
mod rpc;
pub mod service;
pub mod store;
pub mod watch;

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
    let server = ClaimsService::new(store, eligibility, ctx.config().client.retry.clone())
        .with_stopping(ctx.stopping())
        .into_server();
    Ok(ServiceParts::new().route(grpc_route!(server, ctx.grpc())))
}
