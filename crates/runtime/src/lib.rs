//! Service runtime shared by the medbill services: layered config, telemetry (tracing +
//! OpenTelemetry with W3C propagation across gRPC, JSON logs carrying trace ids), metrics
//! (Prometheus text format, optional OTLP push), bearer-token auth resolving the tenant,
//! one error type mapped to gRPC status, page tokens, the gRPC server bootstrap (health,
//! reflection, limits, deadlines, graceful shutdown) and service-to-service clients.
//!
//! This crate knows no medbill protos: reflection descriptor sets are passed in as bytes.

pub mod auth;
pub mod client;
pub mod config;
pub mod error;
pub mod fields;
pub mod metrics;
pub mod paging;
pub mod propagation;
pub mod server;
pub mod telemetry;

pub use auth::{Tenant, tenant};
pub use config::{Config, Secret, ServiceKind};
pub use error::ServiceError;
