//! Service runtime shared by the medbill services: layered config, telemetry (tracing +
//! OpenTelemetry with W3C propagation across gRPC, JSON logs carrying trace ids), metrics
//! (Prometheus text format, optional OTLP push), authentication (static bearer tokens and OIDC JWTs) resolving the tenant
//! and subject, scopes per RPC, per-tenant limits, the audit trail,
//! one error type mapped to gRPC status, page tokens, the gRPC server bootstrap (health,
//! reflection, limits, deadlines, graceful shutdown), service-to-service clients, and the
//! [`service`] contract by which every service crate is started, with its background tasks and
//! outbox destinations.
//!
//! Of the medbill protos it knows only `IdempotentRequest` (which requests carry a key, and their
//! RPC); reflection descriptor sets are passed in as bytes. It depends on no service crate: each
//! service owns its settings and extracts them from the configuration the runtime loads.

pub mod audit;
pub mod auth;
pub mod batch;
pub mod client;
pub mod config;
pub mod credentials;
pub mod error;
pub mod fields;
pub mod group_commit;
pub mod http_client;
pub mod idempotent;
pub mod limits;
pub mod metrics;
pub mod oidc;
pub mod paging;
pub mod propagation;
pub mod scopes;
pub mod server;
pub mod service;
pub mod telemetry;
pub mod tls;

pub use auth::{Tenant, tenant};
pub use config::{Config, LoadedConfig, Secret, ServiceKind};
pub use error::{ErrorCode, ServiceError};

// Used by `grpc_route!` so callers need not name tonic themselves.
#[doc(hidden)]
pub use tonic as __tonic;
