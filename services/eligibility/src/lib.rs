//! The medbill eligibility service: patients' insurance coverages now; eligibility checks
//! (X12 270/271), cost estimates and prior authorizations (X12 278) arrive with issue 3.
//!
//! - [`model`]: coverages as Rust types (PHI redacted from `Debug`);
//! - [`store`]: the [`EligibilityStore`] trait and its PostgreSQL/SQLite implementation, with
//!   [`open_store`] to migrate and connect;
//! - [`service`]: [`EligibilityService`], the gRPC service (`EligibilityService::new(store).into_server()`).

#![forbid(unsafe_code)]

pub mod model;
pub mod service;
pub mod store;

pub use model::{Coverage, CoverageFilter, CoverageOrder, NewCoverage};
pub use service::EligibilityService;
pub use store::{EligibilityStore, SqlEligibilityStore, StoreError, open_store};
