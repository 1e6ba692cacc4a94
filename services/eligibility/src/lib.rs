//! The medbill eligibility service: patients' insurance coverages, real-time eligibility checks
//! (X12 270 -> 271 through `medbill_connect`) with a benefit summary, an answer cache with single
//! flight, and patient cost estimates (Good Faith Estimates for self-pay). Prior authorizations
//! (X12 278) are not built yet.
//!
//! - [`model`]: coverages and stored checks as Rust types (PHI redacted from `Debug`);
//! - [`store`]: the [`EligibilityStore`] trait and its PostgreSQL/SQLite implementation, with
//!   [`open_store`] to migrate and connect;
//! - [`exchange`]: the 270 writer call and the 271 summary; [`cache`]: answer cache and single
//!   flight; [`checks`]: CheckEligibility; [`pricing`] and [`estimates`]: EstimatePatientCost;
//! - [`settings`]: providers, fee schedules and payer identities from configuration;
//! - [`service`]: [`EligibilityService`], the gRPC service
//!   (`EligibilityService::from_config(store, &config)?.into_server()`).

#![forbid(unsafe_code)]

pub mod cache;
pub mod checks;
pub mod estimates;
pub mod exchange;
pub mod mapping;
pub mod model;
pub mod pricing;
pub mod service;
pub mod settings;
pub mod store;

pub use model::{CheckFilter, Coverage, CoverageFilter, CoverageOrder, NewCoverage, StoredCheck};
pub use service::EligibilityService;
pub use settings::{EligibilitySettings, Provider, SetupError};
pub use store::{EligibilityStore, SqlEligibilityStore, StoreError, open_store};
