//! The medbill remittance service: received 835 electronic remittance advice (ERA) files, kept raw and
//! summarised, with the places where they do not balance.
//!
//! - [`model`]: the received file, its ERAs (one per 835 transaction set), their payment summary and
//!   balance problems.
//! - [`delivery`]: the outbox messages remittance owes collections, and their gRPC delivery.
//! - [`ingest`]: reading and balancing a received 835, set by set, with `medbill_x12` (when a set or a
//!   file is rejected, and which element is the payer's identity).
//! - [`intake`]: storing a file once and each of its sets as an ERA, in one transaction.
//! - [`service`]: [`RemittanceService`], the gRPC service (IngestEra, IngestEraStream, GetEra, ListEras;
//!   the rest answer UNIMPLEMENTED saying what is not built yet).
//! - [`store`]: the [`EraStore`] trait and its PostgreSQL/SQLite implementation.
//! - [`start`]: the service as the binary runs it (see `medbill_runtime::service`).

pub mod delivery;
pub mod ingest;
pub mod intake;
pub mod model;
pub mod service;
pub mod store;

pub use intake::{Ingested, ingest_file};
pub use model::{
    BalanceLevel, BalanceProblem, Era, EraFile, EraFileId, EraFilter, EraStatus, EraSummary, NewEra,
};
pub use service::RemittanceService;
pub use store::{EraStore, EraStoreError, SqlEraStore, StoredFile, open_store};

use medbill_runtime::service::{
    OutboxDelivery, ServiceDef, ServiceParts, StartContext, StartError, no_settings,
};
use medbill_runtime::{ServiceKind, grpc_route};

/// The remittance service as the binary lists it (no settings of its own yet).
pub const SERVICE: ServiceDef = ServiceDef {
    service: ServiceKind::Remittance,
    sections: &[],
    check: no_settings,
    start: |ctx| Box::pin(start(ctx)),
};

/// Starts the remittance service: opens its store (running migrations) and returns its gRPC
/// routes and its outbox delivery to collections ([`delivery::DESTINATIONS`]), for which the
/// binary runs a relay.
pub async fn start(ctx: StartContext) -> Result<ServiceParts, StartError> {
    let db = ctx.database().await?;
    let store = open_store(db.clone())
        .await
        .map_err(StartError::Migrations)?;
    let server = RemittanceService::new(store).into_server();
    let collections = delivery::CollectionsDelivery::new(
        ctx.channel(ServiceKind::Collections)?,
        ctx.config().auth.clone(),
    );
    Ok(ServiceParts::new()
        .route(grpc_route!(server, ctx.grpc()))
        .delivers(OutboxDelivery::new(db, delivery::DESTINATIONS, collections)))
}
