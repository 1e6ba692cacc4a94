//! The medbill remittance service: received 835 electronic remittance advice (ERA) files, kept raw and
//! summarised, with the places where they do not balance.
//!
//! - [`model`]: the received file, its ERAs (one per 835 transaction set), their payment summary and
//!   balance problems.
//! - [`delivery`]: the outbox messages remittance owes claims and collections, and their gRPC
//!   delivery.
//! - [`directory`]: the claims payments are matched to, asked over gRPC.
//! - [`denials`]: the denial worklist (which posted payments and lines are denied, why, what to
//!   do next), ListDenials and UpdateDenial.
//! - [`deposits`]: bank deposits reconciled to ERAs by trace number and amount,
//!   ReconcileDeposit and ListDepositReconciliations.
//! - [`matching`]: the rules matching a claim payment to its claim and its lines to claim lines.
//! - [`posting`]: the posting worker: match, then post once, in one transaction.
//! - [`pickup`]: retrieval of 835s from the payer routes on a schedule.
//! - [`ingest`]: reading and balancing a received 835, set by set, with `medbill_x12` (when a set or a
//!   file is rejected, and which element is the payer's identity).
//! - [`intake`]: storing a file once and each of its sets as an ERA, in one transaction.
//! - [`service`]: [`RemittanceService`], the gRPC service (IngestEra, IngestEraStream, GetEra, ListEras,
//!   ListClaimPayments, MatchClaimPayment, PostUnbalancedEra), handing each concern's RPCs to its
//!   folder's `rpc.rs`.
//! - [`store`]: the [`EraStore`] trait and its PostgreSQL/SQLite implementation.
//! - [`start`]: the service as the binary runs it (see `medbill_runtime::service`).

pub mod delivery;
pub mod denials;
pub mod deposits;
pub mod directory;
pub mod ingest;
pub mod intake;
pub mod matching;
pub mod model;
pub mod pickup;
pub mod posting;
pub mod service;
pub mod store;
pub mod upload;

pub use intake::{Ingested, ingest_file};
pub use model::{
    BalanceLevel, BalanceProblem, Era, EraFile, EraFileId, EraFilter, EraStatus, EraSummary, NewEra,
};
pub use service::RemittanceService;
pub use store::{EraStore, EraStoreError, SqlEraStore, StoredFile, open_store};

use medbill_connect::{Connection, PayerConnection};
use medbill_domain::TenantId;
use medbill_runtime::config::{ConfigError, DEFAULT_TENANT, LoadedConfig};
use medbill_runtime::service::{
    OutboxDelivery, ServiceDef, ServiceParts, StartContext, StartError,
};
use medbill_runtime::{ServiceKind, grpc_route};

/// The configuration section remittance owns.
pub const SECTION: &str = "remittance";
/// The payer routes section (owned by claims, which sends through the same routes).
const PAYERS_SECTION: &str = "payers";

/// How often the posting worker looks for ERAs to post when nothing wakes it.
const POSTING_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// The remittance service as the binary lists it.
pub const SERVICE: ServiceDef = ServiceDef {
    service: ServiceKind::Remittance,
    sections: &[SECTION],
    check,
    start: |ctx| Box::pin(start(ctx)),
};

/// Validates the `remittance` section at load.
fn check(config: &LoadedConfig) -> Result<(), ConfigError> {
    let settings: pickup::RemittanceSettings = config.section(SECTION)?;
    settings.check().map_err(|reason| ConfigError::Invalid {
        key: format!("{SECTION}.era_pickup.tenants"),
        reason,
    })
}

/// Starts the remittance service: opens its store (running migrations) and returns its gRPC
/// routes, its posting worker ([`posting::posting_task`], matching through the claims service)
/// and its outbox delivery to claims and collections ([`delivery::DESTINATIONS`]), for which the
/// binary runs a relay.
pub async fn start(ctx: StartContext) -> Result<ServiceParts, StartError> {
    let db = ctx.database().await?;
    let store = open_store(db.clone())
        .await
        .map_err(StartError::Migrations)?;
    let auth = ctx.outgoing_tokens()?;
    let claims = ctx.channel(ServiceKind::Claims)?;
    let directory = directory::GrpcClaimDirectory::new(claims.clone(), auth.clone());
    let poster = posting::Poster::new(
        store.clone(),
        std::sync::Arc::new(directory),
        medbill_storage::outbox::default_owner(),
    );
    let server = RemittanceService::new(store.clone())
        .with_poster(poster.clone())
        .into_server();
    let deliveries = delivery::Deliveries {
        claims: delivery::ClaimsDelivery::new(claims, auth.clone()),
        collections: delivery::CollectionsDelivery::new(
            ctx.channel(ServiceKind::Collections)?,
            auth,
        ),
    };
    let mut parts = ServiceParts::new()
        .route(grpc_route!(server, ctx.grpc()))
        .task(posting::posting_task(poster.clone(), POSTING_INTERVAL))
        .delivers(OutboxDelivery::new(db, delivery::DESTINATIONS, deliveries));
    let settings: pickup::RemittanceSettings = ctx.settings(SECTION)?;
    let payers: Vec<PayerConnection> = ctx.loaded().section(PAYERS_SECTION)?;
    let mut routes = Vec::new();
    for payer in &payers {
        let tenant = match settings.era_pickup.tenants.get(&payer.payer_id) {
            Some(t) => t.clone(),
            None if ctx.config().auth.is_dev_mode() => DEFAULT_TENANT.to_owned(),
            None => {
                parts = parts.notice(format!(
                    "remittance: 835s of payer route {} are not retrieved: \
                     remittance.era_pickup.tenants names no tenant for it",
                    payer.payer_id
                ));
                continue;
            }
        };
        routes.push(pickup::Route {
            payer_id: payer.payer_id.clone(),
            connection: Connection::open(payer).map_err(StartError::setup)?,
            tenant: TenantId::parse(&tenant).map_err(StartError::setup)?,
        });
    }
    if settings.era_pickup.poll_secs > 0 && !routes.is_empty() {
        parts = parts.task(pickup::pickup_task(
            store,
            poster,
            routes,
            medbill_storage::outbox::default_owner(),
            std::time::Duration::from_secs(settings.era_pickup.poll_secs),
        ));
    }
    Ok(parts)
}
