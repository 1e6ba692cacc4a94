//! The medbill remittance service: received 835 electronic remittance advice (ERA) files, kept raw and
//! summarised, with the places where they do not balance.
//!
//! - [`model`]: the ERA, its payment summary and balance problems.
//! - [`delivery`]: the outbox messages remittance owes collections, and their gRPC delivery.
//! - [`ingest`]: parsing and balancing a received 835 with `medbill_x12` (and when a file is rejected).
//! - [`service`]: [`RemittanceService`], the gRPC service (IngestEra, IngestEraStream, GetEra, ListEras;
//!   the rest answer UNIMPLEMENTED naming what brings them).
//! - [`store`]: the [`EraStore`] trait and its PostgreSQL/SQLite implementation.

pub mod delivery;
pub mod ingest;
pub mod model;
pub mod service;
pub mod store;

pub use model::{BalanceLevel, BalanceProblem, Era, EraFilter, EraStatus, EraSummary, NewEra};
pub use service::RemittanceService;
pub use store::{EraStore, EraStoreError, Ingested, SqlEraStore, open_store};
