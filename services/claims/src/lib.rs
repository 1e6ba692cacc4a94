//! The medbill claims service: professional (837P) and institutional (837I) claims, their diagnoses and
//! service lines, and the history of their status changes.
//!
//! - [`adjudication`]: payer adjudications (835) and the rules that turn one into a claim status.
//! - [`aging`]: insurance A/R aging buckets.
//! - [`watch`]: [`watch::WatchHub`], WatchClaims' replay-then-live stream.
//! - [`acknowledgements`]: TA1 / 999 / 277CA in (IngestAcknowledgement and the pickup task).
//! - [`coverage`]: [`CoverageClient`], CreateClaim's coverage check with the eligibility service over
//!   gRPC (the caller's token forwarded, reads retried).
//! - [`details`]: what a claim carries only for its 837 (demographics, other providers,
//!   authorization numbers, institutional fields, the coverage snapshot).
//! - [`lifecycle`]: which claim status may follow which, and why.
//! - [`model`]: the claim and its validation rules (CLM01, diagnosis pointers, modifiers, total charge).
//! - [`providers`]: the tenant's providers and service facilities (CreateProvider and friends).
//! - [`scrub`]: the scrub edits (pure) and ScrubClaim.
//! - [`settings`]: the `[claims]` section (code set files, payer scrub rules, submission).
//! - [`submission`]: READY claims into 837P/837I batches, stored and delivered (SubmitClaims,
//!   GetSubmissionBatch, redelivery after a crash).
//! - [`service`]: [`ClaimsService`], the gRPC service; the RPCs after submission (ApplyAdjudication,
//!   CorrectClaim, VoidClaim, WatchClaims, ListClaimEvents, GetInsuranceAging) are in `rpc/`.
//! - [`store`]: the [`ClaimStore`] trait and its PostgreSQL/SQLite implementation.
//! - [`start`]: the service as the binary runs it (see `medbill_runtime::service`).

pub mod acknowledgements;
pub mod adjudication;
pub mod aging;
pub mod coverage;
pub mod details;
pub mod lifecycle;
pub mod model;
pub mod providers;
mod rpc;
pub mod scrub;
pub mod service;
pub mod settings;
pub mod store;
pub mod submission;
pub mod watch;

pub use coverage::{CoverageClient, CoverageError};
pub use model::{
    Claim, ClaimFilter, ClaimLine, ClaimStatus, ClaimType, FrequencyCode, NewClaim, NewClaimLine,
    StatusChange, StatusChangeSource,
};
pub use service::ClaimsService;
pub use store::{ClaimStore, ClaimStoreError, SqlClaimStore, open_store};

use medbill_connect::{Connections, PayerConnection};
use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use medbill_runtime::service::{Destination, ServiceDef, ServiceParts, StartContext, StartError};
use medbill_runtime::{ServiceKind, grpc_route};
pub use settings::{ClaimsConfig, SECTION};

/// Top-level configuration key of the payer connections (`[[payers]]`), shared with eligibility.
pub const PAYERS_SECTION: &str = "payers";

/// The claims service as the binary lists it.
pub const SERVICE: ServiceDef = ServiceDef {
    service: ServiceKind::Claims,
    sections: &[SECTION, PAYERS_SECTION],
    check: settings::check,
    start: |ctx| Box::pin(start(ctx)),
};

/// Starts the claims service: reads its settings and code set files, opens the payer connections
/// and its store (running migrations), connects to eligibility for coverage checks, and returns
/// its gRPC routes and the task that delivers batches a crash left undelivered.
pub async fn start(ctx: StartContext) -> Result<ServiceParts, StartError> {
    let config = ClaimsConfig::load(ctx.loaded())?;
    let rules = std::sync::Arc::new(config.scrub_rules()?);
    let payers: Vec<PayerConnection> = ctx.loaded().section(PAYERS_SECTION)?;
    let connections = Connections::open(&payers).map_err(StartError::setup)?;
    let submitter = submission::delivery::Submitter::new(connections, &payers, &config.submission);
    let store = open_store(ctx.database().await?)
        .await
        .map_err(StartError::Migrations)?;
    let eligibility = EligibilityServiceClient::new(ctx.channel(ServiceKind::Eligibility)?);
    let redelivery = submission::delivery::redeliver_task(
        store.clone(),
        submitter.clone(),
        std::time::Duration::from_secs(config.submission.redeliver_after_secs),
    );
    let pickup = acknowledgements::pickup_task(
        store.clone(),
        submitter.clone(),
        std::time::Duration::from_secs(config.submission.acknowledgement_poll_secs),
    );
    let server = ClaimsService::new(store, eligibility, ctx.config().client.retry.clone())
        .with_submitter(submitter)
        .with_scrub_rules(rules)
        .with_stopping(ctx.stopping())
        .into_server();
    let mut parts = ServiceParts::new()
        .route(grpc_route!(server, ctx.grpc()))
        .task(redelivery)
        .task(pickup)
        // Remittance posts ERA claim payments here through its outbox (keyed per payment).
        .receives(&[Destination::ClaimsApplyAdjudication]);
    if config.submission.contact_phone.is_empty() {
        parts = parts.notice(
            "claims.submission.contact_phone is not configured: SubmitClaims refuses until the \
             submitter's EDI contact is set (see docs/configuration.md)",
        );
    }
    Ok(parts)
}
