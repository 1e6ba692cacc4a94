//! The medbill collections service: patient accounts on a double-entry ledger.
//!
//! - [`agency`]: agency placement behind the IRS 501(r) guard (PlaceWithAgency,
//!   RecallPlacement), the placement file;
//! - [`aging`]: what is owed by age, from the ledger (oldest charges paid first);
//! - [`batch`]: the batch path of patient responsibility and payments (PostPatientResponsibilities,
//!   RecordPayments), each item applied once by its own key;
//! - [`clock`]: today's date as the service sees it (statements and dunning count days from it);
//! - [`dunning`]: the dunning cadence, its holds and small-balance write-offs (RunDunning,
//!   SetAccountHolds);
//! - [`model`]: accounts, journal entries and postings, with the double-entry check;
//! - [`store`]: the [`CollectionsStore`] trait and its PostgreSQL/SQLite implementation, with
//!   [`open_store`] to migrate and connect;
//! - [`records`]: what is kept next to ledger entries, per-claim balances and the allocation of
//!   money to them, aging report rows;
//! - [`plans`]: payment plans, their schedule and standing (CreatePaymentPlan, GetPaymentPlan,
//!   CancelPaymentPlan; payments applied to installments);
//! - [`posting`]: the RPCs that move money (patient responsibility, self-pay bills, payments,
//!   refunds, write-offs);
//! - [`statements`]: patient statements built from the ledger, their PDF and print-vendor file
//!   (GenerateStatements, GetStatement, GetStatementPrintFile);
//! - [`settings`]: the `[collections]` section ([`CollectionsConfig`]);
//! - [`service`]: [`CollectionsService`], the gRPC service (`CollectionsService::new(store).into_server()`):
//!   the accounts and ledger reads, and the trait impl that hands every other RPC to its concern;
//! - [`start`]: the service as the binary runs it (see `medbill_runtime::service`).
//!
//! An account's balance is derived from the ledger, never stored: the sum of its postings on
//! `PATIENT_AR` (debit positive: what the patient owes).

#![forbid(unsafe_code)]

pub mod agency;
pub mod aging;
pub mod batch;
pub mod clock;
pub mod dunning;
pub mod model;
pub mod plans;
pub mod posting;
pub mod records;
pub mod seed;
pub mod service;
pub mod settings;
pub mod statements;
pub mod store;

pub use clock::Clock;
pub use model::{
    Account, AccountFilter, AccountStatus, CollectionState, EntryKind, JournalEntry, LedgerAccount,
    LedgerError, NewAccount, NewJournalEntry, PayerType, PaymentMethod, Posting, WriteOffKind,
};
pub use service::CollectionsService;
pub use settings::CollectionsConfig;
pub use store::{
    CollectionsStore, DunningStore, PlanStore, SqlCollectionsStore, StatementStore, StoreError,
    open_store,
};

use medbill_runtime::service::{Destination, ServiceDef, ServiceParts, StartContext, StartError};
use medbill_runtime::{ServiceKind, grpc_route};

/// The collections service as the binary lists it, with its `[collections]` section.
pub const SERVICE: ServiceDef = ServiceDef {
    service: ServiceKind::Collections,
    sections: &[settings::SECTION],
    check: settings::check,
    start: |ctx| Box::pin(start(ctx)),
};

/// Starts the collections service: opens its store (running migrations) and returns its gRPC
/// routes. It receives remittance's account requests and patient responsibility through the
/// outbox ([`Destination::CollectionsOpenAccount`],
/// [`Destination::CollectionsPostPatientResponsibility`], deduplicated by idempotency key).
pub async fn start(ctx: StartContext) -> Result<ServiceParts, StartError> {
    let config = CollectionsConfig::load(ctx.loaded())?;
    let clock = match &config.training_clock {
        None => Clock::system(),
        Some(training) => Clock::date_file(&training.date_file).map_err(|reason| {
            medbill_runtime::config::ConfigError::Invalid {
                key: format!("{}.training_clock.date_file", settings::SECTION),
                reason,
            }
        })?,
    };
    if config.training_clock.is_some() {
        tracing::warn!(today = %clock.today(), "collections runs on a training clock, not the calendar");
    }
    let store = open_store(ctx.database().await?)
        .await
        .map_err(StartError::Migrations)?;
    let server = CollectionsService::with_config(store, config)
        .with_clock(clock)
        .into_server();
    Ok(ServiceParts::new()
        .route(grpc_route!(server, ctx.grpc()))
        .receives(&[
            Destination::CollectionsOpenAccount,
            Destination::CollectionsPostPatientResponsibility,
        ]))
}
