//! The medbill claims service: professional (837P) and institutional (837I) claims, their diagnoses and
//! service lines, and the history of their status changes.
//!
//! The service is laid out by concern, each folder holding its rules and its RPCs (`rpc.rs`):
//!
//! - [`providers`]: the tenant's providers and service facilities (CreateProvider and friends).
//! - [`model`] and [`details`]: the claim and its validation rules; what it carries only for its
//!   837 (demographics, other providers, authorization numbers, 837I fields, coverage snapshot).
//! - [`coverage`]: [`CoverageClient`], the coverage checks with the eligibility service over gRPC
//!   (the caller's token forwarded, reads retried).
//! - [`lifecycle`]: which claim status may follow which, and why.
//! - [`scrub`]: the scrub edits (pure) and ScrubClaim.
//! - [`submission`]: READY claims into 837P/837I batches, stored and delivered (SubmitClaims,
//!   GetSubmissionBatch, redelivery after a crash).
//! - [`acknowledgements`]: TA1 / 999 / 277CA in (IngestAcknowledgement and the pickup task).
//! - `corrections`: CorrectClaim and VoidClaim.
//! - [`adjudication`]: payer adjudications (835) and the rules that turn one into a claim status;
//!   ApplyAdjudication.
//! - [`cob`]: coordination of benefits: the secondary claim made from a primary's adjudication.
//! - [`follow_up`]: 276/277 follow-up of unpaid claims (the background task, FollowUpClaim,
//!   ListClaimFollowUps).
//! - `events` and [`watch`]: ListClaimEvents, and WatchClaims' replay-then-live stream.
//! - [`aging`]: insurance A/R aging (GetInsuranceAging).
//! - [`settings`]: the `[claims]` section (code set files, payer rules, submission, follow-up).
//! - [`service`]: [`ClaimsService`], the gRPC service: CreateClaim, GetClaim, ListClaims, and the
//!   trait impl that hands every other RPC to its concern's `rpc.rs`.
//! - [`store`]: the [`ClaimStore`] trait and its PostgreSQL/SQLite implementation.
//! - [`start`]: the service as the binary runs it (see `medbill_runtime::service`).

pub mod acknowledgements;
pub mod adjudication;
pub mod aging;
pub mod cob;
pub(crate) mod corrections;
pub mod coverage;
pub(crate) mod creation;
pub mod details;
pub(crate) mod events;
pub mod follow_up;
pub mod lifecycle;
pub mod model;
pub mod providers;
pub mod scrub;
pub mod service;
pub mod settings;
pub mod store;
pub mod submission;
pub mod watch;

pub use coverage::{CoverageClient, CoverageError};
pub use model::{
    Claim, ClaimFilter, ClaimLine, ClaimStatus, ClaimType, FrequencyCode, NewClaim, NewClaimLine,
    StatusChange, StatusChangeSource, StatusMove,
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
/// its gRPC routes, the task that delivers batches a crash left undelivered and the task that
/// follows up unpaid claims (276/277).
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
    let follow_ups = follow_up::FollowUps::new(submitter.clone(), config.follow_up_days());
    let follow_up = follow_up::follow_up_task(
        store.clone(),
        follow_ups.clone(),
        std::time::Duration::from_secs(config.follow_up_check_secs),
    );
    let server = ClaimsService::new(store, eligibility, ctx.config().client.retry.clone())
        .with_submitter(submitter)
        .with_follow_ups(follow_ups)
        .with_scrub_rules(rules)
        .with_stopping(ctx.stopping())
        .into_server();
    let mut parts = ServiceParts::new()
        .route(grpc_route!(server, ctx.grpc()))
        .task(redelivery)
        .task(pickup)
        .task(follow_up)
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
