//! `medbill serve`: runs one service, or all four in one process, behind one gRPC listener.
//!
//! Every service gets its own database namespace (a PostgreSQL schema or a SQLite file) from
//! the one configured URL, and reaches the others through their gRPC clients at the
//! configured endpoints, which default to this process: the code path and the traces are the
//! same whether the services share a process or not.

use std::path::PathBuf;

use anyhow::Context as _;
use medbill_connect::{
    CoreHttpConfig, PayerConnection, RetryPolicy as ConnectRetryPolicy, TransportConfig,
};
use medbill_payer_sim::PayerSimHandle;
use medbill_proto::eligibility::v1::eligibility_service_client::EligibilityServiceClient;
use medbill_remittance::delivery::CollectionsDelivery;
use medbill_runtime::auth::Authenticator;
use medbill_runtime::client;
use medbill_runtime::config::{
    self, Config, ConfigOverrides, LogFormat, ProviderConfig, ServiceKind,
};
use medbill_runtime::server::{Server, ServerHandle, shutdown_signal};
use medbill_runtime::{metrics, telemetry, with_grpc_limits};
use medbill_storage::Database;
use medbill_storage::outbox::{Relay, RelayHandle};
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;

/// Which services this process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    /// All four services in one process (the zero-setup default, on SQLite).
    All,
    /// The eligibility service only.
    Eligibility,
    /// The claims service only.
    Claims,
    /// The remittance service only.
    Remittance,
    /// The collections service only.
    Collections,
    /// The payer simulator only (the clearinghouse/payer counterparty for development).
    PayerSim,
}

impl Target {
    fn services(self) -> Vec<ServiceKind> {
        match self {
            Target::All => ServiceKind::ALL.to_vec(),
            Target::Eligibility => vec![ServiceKind::Eligibility],
            Target::Claims => vec![ServiceKind::Claims],
            Target::Remittance => vec![ServiceKind::Remittance],
            Target::Collections => vec![ServiceKind::Collections],
            Target::PayerSim => Vec::new(),
        }
    }

    fn runs_payer_sim(self) -> bool {
        matches!(self, Target::All | Target::PayerSim)
    }
}

/// Flags of `medbill serve`; each one overrides the file and the environment.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Which services to run.
    #[arg(long, value_enum, default_value = "all")]
    pub target: Target,
    /// TOML configuration file (also `MEDBILL_CONFIG`).
    #[arg(long, env = "MEDBILL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on, e.g. `0.0.0.0:50051` (config key `listen`).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Directory for the default SQLite databases (config key `data_dir`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// `postgres://...` or `sqlite://...` (config key `database_url`).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Log line format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormatArg>,
}

/// `--log-format` values.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Loads the configuration, starts the chosen services and serves until SIGTERM/SIGINT.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let overrides = ConfigOverrides {
        listen: args.listen,
        data_dir: args.data_dir.clone(),
        database_url: args.database_url.clone(),
        log_format: args.log_format.map(|f| match f {
            LogFormatArg::Pretty => LogFormat::Pretty,
            LogFormatArg::Json => LogFormat::Json,
        }),
    };
    let config =
        config::load(args.config.as_deref(), &overrides).context("loading configuration")?;
    let _telemetry = telemetry::init(&config.telemetry).context("starting telemetry")?;
    if args.target == Target::PayerSim {
        let sim = start_payer_sim(&config).await?;
        shutdown_signal().await;
        sim.shutdown().await?;
        println!("medbill stopped");
        return Ok(());
    }
    let metrics = metrics::init(&config.metrics, &config.telemetry.service_name)
        .await
        .context("starting metrics")?;
    if let Some(url) = metrics.url() {
        println!("metrics: {url}");
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;

    let running = start(&config, args.target, listener).await?;
    let names: Vec<&str> = running.services.iter().map(|s| s.as_str()).collect();
    println!(
        "medbill listening on {} ({})",
        running.handle.local_addr(),
        names.join(", ")
    );
    if config.auth.is_dev_mode() {
        println!(
            "auth: dev mode (no tokens configured): calls without a token act for tenant \"{}\"",
            config::DEFAULT_TENANT
        );
    }
    tracing::info!(addr = %running.handle.local_addr(), services = ?names, "medbill started");
    running.run_until(shutdown_signal()).await?;
    println!("medbill stopped");
    Ok(())
}

/// A started set of services behind one listener, with their outbox relays.
pub struct Running {
    /// The server: its address, health reporter and shutdown.
    pub handle: ServerHandle,
    /// The services it runs.
    pub services: Vec<ServiceKind>,
    relays: Vec<RelayHandle>,
    payer_sim: Option<PayerSimHandle>,
}

impl Running {
    /// Serves until `signal`, then drains in-flight calls and stops the relays gracefully
    /// (a message being delivered is recorded first).
    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let served = self.handle.run_until(signal).await;
        for relay in self.relays {
            relay.shutdown().await;
        }
        if let Some(sim) = self.payer_sim {
            sim.shutdown().await?;
        }
        served.context("serving gRPC")
    }

    /// Stops now: the same drain as [`Running::run_until`], triggered at once.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.run_until(std::future::ready(())).await
    }
}

/// Opens each of `target`'s databases (running migrations) and starts serving them on
/// `listener`. Prints each service's database, as an operator wants to see at start.
pub async fn start(
    config: &Config,
    target: Target,
    listener: TcpListener,
) -> anyhow::Result<Running> {
    let services = target.services();
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                config.data_dir.display()
            )
        })?;
    }
    let payer_sim = if target.runs_payer_sim() {
        Some(start_payer_sim(config).await?)
    } else {
        None
    };
    let demo_config;
    let config = match &payer_sim {
        Some(sim) if config.payers.is_empty() => {
            demo_config = with_demo_payers(config, sim);
            &demo_config
        }
        _ => config,
    };
    let local_addr = listener.local_addr()?;
    for (caller, callee) in unreachable_dependencies(config, &services) {
        println!(
            "warning: {caller} calls {callee}, which this process does not run and \
             `endpoints.{callee}` does not name; those calls will fail until it is configured"
        );
    }
    let mut routes = RoutesBuilder::default();
    let mut server_names = Vec::new();
    let mut relays = Vec::new();
    for &service in &services {
        let db = connect(config, service).await?;
        println!("{service}: database {}", db.redacted_url());
        server_names.push(add_service(&mut routes, config, service, db.clone(), local_addr).await?);
        // After add_service: its migrations created the outbox table.
        metrics::observe_database(service.as_str(), &db);
        if service == ServiceKind::Remittance {
            relays.push(remittance_relay(config, local_addr, db)?);
        }
    }
    let mut server = Server::new(routes.routes())
        .descriptor_set(medbill_proto::FILE_DESCRIPTOR_SET)
        .grpc_config(&config.grpc)
        .authenticator(Authenticator::from_config(&config.auth));
    for name in server_names {
        server = server.serving(name);
    }
    let handle = server
        .start(listener)
        .await
        .context("starting the gRPC server")?;
    Ok(Running {
        handle,
        services,
        relays,
        payer_sim,
    })
}

/// The services each service calls over gRPC (see DESIGN.md).
const DEPENDENCIES: [(ServiceKind, ServiceKind); 2] = [
    (ServiceKind::Claims, ServiceKind::Eligibility),
    (ServiceKind::Remittance, ServiceKind::Collections),
];

/// Returns the (caller, callee) pairs where the callee neither runs here nor has an endpoint:
/// in split mode the default endpoint is this process, which does not serve it.
fn unreachable_dependencies(
    config: &Config,
    running: &[ServiceKind],
) -> Vec<(ServiceKind, ServiceKind)> {
    DEPENDENCIES
        .into_iter()
        .filter(|(caller, callee)| {
            running.contains(caller)
                && !running.contains(callee)
                && config.endpoints.get(*callee).is_none()
        })
        .collect()
}

/// Starts the payer simulator on its own HTTP listener and says where it listens.
async fn start_payer_sim(config: &Config) -> anyhow::Result<PayerSimHandle> {
    let sim = medbill_payer_sim::bind_and_start(config.payer_sim.clone())
        .await
        .context("starting payer-sim")?;
    println!("payer-sim: CORE endpoint {}", sim.url());
    Ok(sim)
}

/// With payer-sim in this process and no `[[payers]]` configured, points eligibility at
/// payer-sim for every payer in its catalog (and names a demo provider when none is set), so the
/// zero-setup suite checks eligibility end to end. Says so, because a real deployment
/// configures its clearinghouse instead.
fn with_demo_payers(config: &Config, sim: &PayerSimHandle) -> Config {
    let mut demo = config.clone();
    for payer_id in sim.payer_ids() {
        demo.payers.push(PayerConnection {
            payer_id: payer_id.clone(),
            sender_id: "MEDBILL".to_owned(),
            receiver_id: payer_id.clone(),
            transport: TransportConfig::CoreHttp(CoreHttpConfig::new(sim.url())),
            batch_transport: None,
            retry: ConnectRetryPolicy::default(),
        });
    }
    if demo.eligibility.default_provider.is_none() {
        demo.eligibility.default_provider = Some(ProviderConfig {
            npi: "1234567893".to_owned(),
            organization_name: "MEDBILL DEMO CLINIC".to_owned(),
            tax_id: None,
        });
    }
    println!(
        "eligibility: no [[payers]] configured; payers {} are answered by the in-process payer-sim",
        sim.payer_ids().join(", ")
    );
    demo
}

/// Starts the relay that delivers what remittance owes collections (see
/// `medbill_remittance::delivery`), through collections' gRPC client wherever it runs.
fn remittance_relay(
    config: &Config,
    local_addr: std::net::SocketAddr,
    db: Database,
) -> anyhow::Result<RelayHandle> {
    let url = config.endpoint_for(ServiceKind::Collections, local_addr);
    let channel = client::connect(&url, &config.client)
        .with_context(|| format!("collections endpoint {url}"))?;
    let delivery = CollectionsDelivery::new(channel, config.auth.clone());
    Ok(Relay::new(db, delivery, config.outbox.clone()).spawn())
}

/// Connects `service` to its own namespace of the configured database.
async fn connect(config: &Config, service: ServiceKind) -> anyhow::Result<Database> {
    let url = config.effective_database_url();
    Database::connect(&url, &config.database_pool, service.as_str())
        .await
        .with_context(|| {
            format!(
                "{service}: cannot open {}",
                config.database_url_for_display()
            )
        })
}

/// Opens `service`'s store (running its migrations), adds its gRPC server to `routes` and
/// returns its fully qualified name for health and reflection.
async fn add_service(
    routes: &mut RoutesBuilder,
    config: &Config,
    service: ServiceKind,
    db: Database,
    local_addr: std::net::SocketAddr,
) -> anyhow::Result<&'static str> {
    use medbill_proto::service_names;
    let migrate = |e| anyhow::anyhow!("{service}: migrations failed: {e}");
    Ok(match service {
        ServiceKind::Eligibility => {
            let store = medbill_eligibility::open_store(db).await.map_err(migrate)?;
            let svc = medbill_eligibility::EligibilityService::from_config(store, config)
                .map_err(|e| anyhow::anyhow!("eligibility: {e}"))?
                .into_server();
            routes.add_service(with_grpc_limits!(svc, &config.grpc));
            service_names::ELIGIBILITY
        }
        ServiceKind::Claims => {
            let store = medbill_claims::open_store(db).await.map_err(migrate)?;
            let url = config.endpoint_for(ServiceKind::Eligibility, local_addr);
            let channel = client::connect(&url, &config.client)
                .with_context(|| format!("eligibility endpoint {url}"))?;
            let eligibility = EligibilityServiceClient::new(channel);
            let svc =
                medbill_claims::ClaimsService::new(store, eligibility, config.client.retry.clone())
                    .into_server();
            routes.add_service(with_grpc_limits!(svc, &config.grpc));
            service_names::CLAIMS
        }
        ServiceKind::Remittance => {
            let store = medbill_remittance::open_store(db).await.map_err(migrate)?;
            let svc = medbill_remittance::RemittanceService::new(store).into_server();
            routes.add_service(with_grpc_limits!(svc, &config.grpc));
            service_names::REMITTANCE
        }
        ServiceKind::Collections => {
            let store = medbill_collections::open_store(db).await.map_err(migrate)?;
            let svc = medbill_collections::CollectionsService::new(store).into_server();
            routes.add_service(with_grpc_limits!(svc, &config.grpc));
            service_names::COLLECTIONS
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_mode_names_dependencies_without_an_endpoint() {
        let mut config = Config::default();
        assert_eq!(
            unreachable_dependencies(&config, &[ServiceKind::Claims]),
            [(ServiceKind::Claims, ServiceKind::Eligibility)]
        );
        assert!(unreachable_dependencies(&config, &ServiceKind::ALL).is_empty());
        config.endpoints.eligibility = Some("http://eligibility:50051".to_owned());
        assert!(unreachable_dependencies(&config, &[ServiceKind::Claims]).is_empty());
        assert_eq!(
            unreachable_dependencies(&config, &[ServiceKind::Remittance]),
            [(ServiceKind::Remittance, ServiceKind::Collections)]
        );
    }
}
