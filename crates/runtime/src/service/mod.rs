//! The contract between a service crate and the binary: one way to wire a service.
//!
//! Each service crate exports
//!
//! - its settings type(s), read from its own top-level section(s) of the configuration with
//!   [`StartContext::settings`] (the runtime keeps only the shared keys);
//! - `pub async fn start(ctx: StartContext) -> Result<ServiceParts, StartError>`, which opens
//!   its store ([`StartContext::database`], then its migrations), builds its service and
//!   returns its [`ServiceParts`]: gRPC routes ([`grpc_route!`](crate::grpc_route)), background
//!   tasks ([`BackgroundTask`]), the outbox destinations it delivers ([`OutboxDelivery`]) and
//!   receives, and notices for the operator;
//! - `pub const SERVICE: ServiceDef`, naming the service, its sections, a settings check and
//!   `start`, so the binary can list every service in one table.
//!
//! The binary loads the configuration once (telling it every service's sections), checks every
//! section, and for each service it runs: creates a [`StartContext`], awaits `start`, adds the
//! routes to one gRPC server, starts every background task in one [`BackgroundTasks`] (plus one
//! outbox relay per service that delivers any destination), and on shutdown drains gRPC first,
//! then stops the tasks.
//!
//! ```no_run
//! use medbill_runtime::service::{ServiceDef, ServiceParts, StartContext, StartError};
//! use medbill_runtime::ServiceKind;
//!
//! pub const SERVICE: ServiceDef = ServiceDef {
//!     service: ServiceKind::Collections,
//!     sections: &[],
//!     check: medbill_runtime::service::no_settings,
//!     start: |ctx| Box::pin(start(ctx)),
//! };
//!
//! pub async fn start(ctx: StartContext) -> Result<ServiceParts, StartError> {
//!     let db = ctx.database().await?;
//!     // let store = open_store(db).await.map_err(StartError::Migrations)?;
//!     // let server = CollectionsService::new(store).into_server();
//!     Ok(ServiceParts::new() /* .route(medbill_runtime::grpc_route!(server, ctx.grpc())) */)
//! }
//! ```

mod background;
mod outbox;

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use medbill_storage::{Database, StorageError};
use serde::de::DeserializeOwned;
use tonic::service::RoutesBuilder;

pub use background::{
    BackgroundTask, BackgroundTasks, Shutdown, ShutdownTrigger, TaskError, TaskFailures,
};
pub use outbox::{Destination, OutboxDelivery};

use crate::client::{self, TracedChannel};
use crate::config::{Config, ConfigError, GrpcConfig, LoadedConfig, ServiceKind};

/// Describes one service to the binary (each service crate exports one as `SERVICE`).
#[derive(Clone, Copy)]
pub struct ServiceDef {
    /// Which service this is.
    pub service: ServiceKind,
    /// The top-level configuration keys the service reads (`["eligibility", "payers"]`); the
    /// binary rejects top-level keys no service and not the runtime claims.
    pub sections: &'static [&'static str],
    /// Extracts and checks the service's sections without side effects. The binary runs it for
    /// every service at load time, whichever it runs, so a typo anywhere is caught at start.
    pub check: fn(&LoadedConfig) -> Result<(), ConfigError>,
    /// Starts the service (the crate's `start`, boxed).
    pub start: fn(StartContext) -> BoxFuture<'static, Result<ServiceParts, StartError>>,
}

impl fmt::Debug for ServiceDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceDef")
            .field("service", &self.service)
            .field("sections", &self.sections)
            .finish_non_exhaustive()
    }
}

/// The [`ServiceDef::check`] of a service without settings of its own.
pub fn no_settings(_: &LoadedConfig) -> Result<(), ConfigError> {
    Ok(())
}

/// Reports why a service could not start. The binary prefixes the service's name.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Its configuration section is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The data directory for the default SQLite databases cannot be created.
    #[error("cannot create the data directory {path}: {reason}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The I/O error.
        reason: std::io::Error,
    },
    /// Its database cannot be opened.
    #[error("cannot open {url}: {reason}")]
    Database {
        /// The database URL, password hidden.
        url: String,
        /// The storage error.
        reason: StorageError,
    },
    /// Its migrations failed.
    #[error("migrations failed: {0}")]
    Migrations(StorageError),
    /// The endpoint of a service it calls is unusable.
    #[error("{service} endpoint {url}: {reason}")]
    Endpoint {
        /// The service called.
        service: ServiceKind,
        /// The endpoint URL.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// Service-specific setup failed (settings that deserialise but cannot be used, payer
    /// connections that cannot be opened, ...).
    #[error("{0}")]
    Setup(String),
}

impl StartError {
    /// Wraps a service-specific setup error (its text is kept, its type is not).
    pub fn setup(error: impl fmt::Display) -> Self {
        StartError::Setup(error.to_string())
    }
}

/// What a service needs to start: the configuration, its database, channels to the services it
/// calls. Cheap to clone; the binary keeps a clone to read what the service opened and called.
#[derive(Clone)]
pub struct StartContext {
    inner: Arc<Inner>,
}

struct Inner {
    service: ServiceKind,
    config: Arc<LoadedConfig>,
    local_addr: SocketAddr,
    stopping: Shutdown,
    database: tokio::sync::OnceCell<Database>,
    callees: Mutex<BTreeSet<ServiceKind>>,
}

impl fmt::Debug for StartContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StartContext")
            .field("service", &self.inner.service)
            .field("local_addr", &self.inner.local_addr)
            .finish_non_exhaustive()
    }
}

impl StartContext {
    /// Creates the context of `service` in a process whose gRPC server listens on `local_addr`
    /// (services called without a configured endpoint are reached there) and fires `stopping`
    /// when that server starts to shut down.
    pub fn new(
        service: ServiceKind,
        config: Arc<LoadedConfig>,
        local_addr: SocketAddr,
        stopping: Shutdown,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                service,
                config,
                local_addr,
                stopping,
                database: tokio::sync::OnceCell::new(),
                callees: Mutex::new(BTreeSet::new()),
            }),
        }
    }

    /// Returns the signal fired when the gRPC server starts to shut down, before it drains
    /// in-flight calls: a server stream that would otherwise stay open (WatchClaims) ends on it,
    /// so the drain does not wait for it. Background tasks stop later, on their own [`Shutdown`].
    pub fn stopping(&self) -> Shutdown {
        self.inner.stopping.clone()
    }

    /// Returns the service being started.
    pub fn service(&self) -> ServiceKind {
        self.inner.service
    }

    /// Returns the shared runtime configuration.
    pub fn config(&self) -> &Config {
        self.inner.config.config()
    }

    /// Returns the whole loaded configuration (for services reading several sections).
    pub fn loaded(&self) -> &LoadedConfig {
        &self.inner.config
    }

    /// Returns the gRPC limits to apply to the service's server (see
    /// [`grpc_route!`](crate::grpc_route)).
    pub fn grpc(&self) -> &GrpcConfig {
        &self.config().grpc
    }

    /// Extracts the service's section at top-level key `section` (defaults when absent); see
    /// [`LoadedConfig::section`].
    pub fn settings<T: DeserializeOwned + Default>(&self, section: &str) -> Result<T, StartError> {
        Ok(self.inner.config.section(section)?)
    }

    /// Connects to the service's own namespace of the configured database (its PostgreSQL
    /// schema or SQLite file, named after the service); the same pool on every call. Migrations
    /// are the service's to run (its `open_store`).
    pub async fn database(&self) -> Result<Database, StartError> {
        let db = self
            .inner
            .database
            .get_or_try_init(|| async {
                let config = self.config();
                if config.database_url.is_none() {
                    std::fs::create_dir_all(&config.data_dir).map_err(|reason| {
                        StartError::DataDir {
                            path: config.data_dir.clone(),
                            reason,
                        }
                    })?;
                }
                Database::connect(
                    &config.effective_database_url(),
                    &config.database_pool,
                    self.service().as_str(),
                )
                .await
                .map_err(|reason| StartError::Database {
                    url: config.database_url_for_display(),
                    reason,
                })
            })
            .await?;
        Ok(db.clone())
    }

    /// Returns the database opened with [`StartContext::database`], if any.
    pub fn opened_database(&self) -> Option<&Database> {
        self.inner.database.get()
    }

    /// Returns a traced channel to `callee` at its configured endpoint (or this process), and
    /// records the call so the binary can warn when the callee is reachable nowhere.
    pub fn channel(&self, callee: ServiceKind) -> Result<TracedChannel, StartError> {
        let config = self.config();
        let url = config.endpoint_for(callee, self.inner.local_addr);
        let channel = client::connect(&url, &config.client).map_err(|e| StartError::Endpoint {
            service: callee,
            url: url.clone(),
            reason: e.to_string(),
        })?;
        if let Ok(mut callees) = self.inner.callees.lock() {
            callees.insert(callee);
        }
        Ok(channel)
    }

    /// Returns where the service's own calls (those made without an inbound request) get their
    /// tokens: static tokens per tenant and the `[client.oidc]` grant.
    pub fn outgoing_tokens(&self) -> Result<crate::credentials::OutgoingTokens, StartError> {
        let config = self.config();
        crate::credentials::OutgoingTokens::new(&config.auth, config.client.oidc.as_ref())
            .map_err(StartError::Setup)
    }

    /// Returns the services the service asked channels to, sorted.
    pub fn callees(&self) -> Vec<ServiceKind> {
        self.inner
            .callees
            .lock()
            .map(|c| c.iter().copied().collect())
            .unwrap_or_default()
    }
}

/// A service's gRPC server, ready to be added to the process's routes (build it with
/// [`grpc_route!`](crate::grpc_route), which applies the message-size limits).
pub struct GrpcRoute {
    name: &'static str,
    add: Box<dyn FnOnce(&mut RoutesBuilder) + Send>,
}

impl fmt::Debug for GrpcRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcRoute")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl GrpcRoute {
    /// Wraps a function that adds the server named `name` to the routes; use
    /// [`grpc_route!`](crate::grpc_route) rather than this.
    #[doc(hidden)]
    pub fn from_adder(
        name: &'static str,
        add: impl FnOnce(&mut RoutesBuilder) + Send + 'static,
    ) -> Self {
        Self {
            name,
            add: Box::new(add),
        }
    }

    /// Returns the fully qualified gRPC service name (e.g. `medbill.claims.v1.ClaimsService`),
    /// reported by health and listed by reflection.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Adds the server to `routes`.
    pub fn add_to(self, routes: &mut RoutesBuilder) {
        (self.add)(routes);
    }
}

/// Builds a [`GrpcRoute`] from a generated tonic server, with the message-size limits of a
/// [`GrpcConfig`] applied and its fully qualified name taken from the generated code:
/// `grpc_route!(ClaimsServiceServer::new(svc), ctx.grpc())`.
#[macro_export]
macro_rules! grpc_route {
    ($server:expr, $limits:expr) => {{
        fn name_of<S: $crate::__tonic::server::NamedService>(_: &S) -> &'static str {
            S::NAME
        }
        let server = $crate::with_grpc_limits!($server, $limits);
        let name = name_of(&server);
        $crate::service::GrpcRoute::from_adder(
            name,
            move |routes: &mut $crate::__tonic::service::RoutesBuilder| {
                routes.add_service(server);
            },
        )
    }};
}

/// What a started service hands the binary.
#[derive(Debug, Default)]
pub struct ServiceParts {
    /// Its gRPC servers (usually one).
    pub routes: Vec<GrpcRoute>,
    /// Its background work (pollers, schedulers); see [`BackgroundTask`] for the replica rule.
    pub tasks: Vec<BackgroundTask>,
    /// What it delivers from its outbox; the binary starts one relay for it.
    pub outbox: Option<OutboxDelivery>,
    /// The outbox destinations it receives (each one's [`Destination::receiver`] is this service).
    pub receives: Vec<Destination>,
    /// Things the operator should know at start (printed by the binary, e.g. "no payers
    /// configured"); no secrets, no PHI.
    pub notices: Vec<String>,
}

impl ServiceParts {
    /// Starts an empty set of parts.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a gRPC server.
    pub fn route(mut self, route: GrpcRoute) -> Self {
        self.routes.push(route);
        self
    }

    /// Adds a background task.
    pub fn task(mut self, task: BackgroundTask) -> Self {
        self.tasks.push(task);
        self
    }

    /// Declares what the service delivers from its outbox.
    pub fn delivers(mut self, outbox: OutboxDelivery) -> Self {
        self.outbox = Some(outbox);
        self
    }

    /// Declares outbox destinations the service receives.
    pub fn receives(mut self, destinations: &[Destination]) -> Self {
        self.receives.extend_from_slice(destinations);
        self
    }

    /// Adds a notice for the operator.
    pub fn notice(mut self, text: impl Into<String>) -> Self {
        self.notices.push(text.into());
        self
    }
}
